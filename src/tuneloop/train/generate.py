"""Generation from a base model, with or without a saved LoRA adapter.

Used by the tests now and by local serving later::

    generator = TextGenerator.load(adapter=job.adapter_path)  # base read from the adapter
    generator.generate("Create engaging content", max_new_tokens=40).text

The prompt goes through the tokenizer's chat template as the user's message (or pass the
``messages`` yourself); generation stops at the end-of-turn token. The adapter is merged
into the weights by default, so generating costs no more than with the base.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tuneloop.errors import ConfigurationError, InvalidInputError
from tuneloop.train.runtime import load_causal_lm, load_tokenizer, pick_device, torch_threads

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: FinishReason


def adapter_base(adapter: Path) -> str:
    """The base model an adapter was trained on (from its ``adapter_config.json``)."""
    config = adapter / "adapter_config.json"
    if not config.is_file():
        raise ConfigurationError(f"{adapter} is not a saved adapter (no adapter_config.json)")
    base = json.loads(config.read_text(encoding="utf-8")).get("base_model_name_or_path")
    if not base:
        raise ConfigurationError(f"{config} does not name its base model")
    return str(base)


class TextGenerator:
    def __init__(
        self, model: Any, tokenizer: Any, *, device: str, num_threads: int | None = None
    ) -> None:
        self.model, self.tokenizer, self.device = model, tokenizer, device
        self.num_threads = num_threads

    @classmethod
    def load(
        cls,
        base_model: str | Path | None = None,
        adapter: Path | None = None,
        *,
        device: str | None = None,
        merge: bool = True,
        num_threads: int | None = None,
    ) -> TextGenerator:
        if base_model is None and adapter is None:
            raise InvalidInputError("give a base model, an adapter, or both")
        base = str(base_model) if base_model is not None else adapter_base(adapter)  # type: ignore[arg-type]
        chosen = pick_device(device)
        with torch_threads(num_threads):
            source: str | Path = base
            if adapter is not None and (adapter / "tokenizer_config.json").is_file():
                source = adapter  # the adapter's copy, saved with it
            tokenizer = load_tokenizer(source)
            model = load_causal_lm(base, device=chosen)
            if adapter is not None:
                from peft import PeftModel

                model = PeftModel.from_pretrained(model, str(adapter))
                if merge:
                    model = model.merge_and_unload()
        model.eval()
        return cls(model, tokenizer, device=chosen, num_threads=num_threads)

    def generate(
        self,
        prompt: str | list[dict[str, str]],
        *,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
    ) -> Generation:
        """Greedy when ``temperature`` is 0, else sampled (reproducible with ``seed``)."""
        import torch

        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        inputs = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(self.device)
        sampling: dict[str, Any] = {"do_sample": False}
        if temperature > 0:
            sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p}
        with torch_threads(self.num_threads), torch.no_grad():
            if seed is not None:
                torch.manual_seed(seed)
            output = self.model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                eos_token_id=self.tokenizer.eos_token_id,
                pad_token_id=self.tokenizer.pad_token_id,
                **sampling,
            )
        prompt_length = inputs["input_ids"].shape[1]
        new = output[0, prompt_length:].tolist()
        stopped = bool(new) and new[-1] == self.tokenizer.eos_token_id
        return Generation(
            text=self.tokenizer.decode(new, skip_special_tokens=True).strip(),
            prompt_tokens=prompt_length,
            completion_tokens=len(new),
            finish_reason="stop" if stopped else "length",
        )
