"""Generation from a base model, with or without a saved LoRA adapter.

Used by the tests now and by local serving later::

    generator = TextGenerator.load(adapter=job.adapter_path)  # base read from the adapter
    generator.generate("Create engaging content", max_new_tokens=40).text

The prompt goes through the tokenizer's chat template as the user's message (or pass the
``messages`` yourself); generation stops at the end-of-turn token. The adapter is merged
into the weights by default, so generating costs no more than with the base.

:func:`generate_chats` is the shared core: several chats in one left-padded
``model.generate``, each cut at its own token limit. The local model server
(:mod:`tuneloop.serving.local`) batches requests through it; :class:`TextGenerator` sends
a batch of one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tuneloop.errors import ConfigurationError, InvalidInputError
from tuneloop.train.runtime import (
    context_length,
    load_causal_lm,
    load_tokenizer,
    pick_device,
    torch_threads,
)

FinishReason = Literal["stop", "length"]
Chat = list[dict[str, str]]


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
        prompt: str | Chat,
        *,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
    ) -> Generation:
        """Greedy when ``temperature`` is 0, else sampled (reproducible with ``seed``)."""
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        with torch_threads(self.num_threads):
            [generation] = generate_chats(
                self.model,
                self.tokenizer,
                [messages],
                device=self.device,
                max_new_tokens=[max_new_tokens],
                temperature=temperature,
                top_p=top_p,
                seed=seed,
            )
        return generation


def generate_chats(
    model: Any,
    tokenizer: Any,
    chats: Sequence[Chat],
    *,
    device: str,
    max_new_tokens: Sequence[int],
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[Generation]:
    """One ``model.generate`` over ``chats``, each cut at its own ``max_new_tokens``.

    Prompts are padded on the left and masked, and ``generate`` derives position ids from
    the mask, so a chat's greedy output does not depend on the chats beside it. The batch
    runs for the largest limit (at most what fits the model's context after the longest
    prompt); a prompt that leaves no room is an :class:`InvalidInputError`. A seeded sample
    is reproducible only in the same company: the batch shares one random stream.
    ``should_stop`` is polled after every token; when it turns true generation ends early.
    """
    import torch

    if len(max_new_tokens) != len(chats):
        raise ValueError("one max_new_tokens per chat")
    inputs = tokenizer.apply_chat_template(
        list(chats),
        add_generation_prompt=True,
        padding=True,
        return_tensors="pt",
        return_dict=True,
        tokenizer_kwargs={"padding_side": "left"},
    ).to(device)
    width = int(inputs["input_ids"].shape[1])
    steps = max(max_new_tokens)
    if (context := context_length(model)) is not None:
        if width >= context:
            raise InvalidInputError(f"a prompt of {width} tokens leaves no room in {context}")
        steps = min(steps, context - width)
    options: dict[str, Any] = {"do_sample": False}
    if temperature > 0:
        options = {"do_sample": True, "temperature": temperature, "top_p": top_p}
    if should_stop is not None:
        options["stopping_criteria"] = _stop_when(should_stop)
    with torch.no_grad():
        if seed is not None:
            torch.manual_seed(seed)
        output = model.generate(
            **inputs,
            max_new_tokens=steps,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            **options,
        )
    prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
    return [
        _finish(tokenizer, output[row, width : width + limit].tolist(), int(prompt_tokens[row]))
        for row, limit in enumerate(max_new_tokens)
    ]


def _finish(tokenizer: Any, new: list[int], prompt_tokens: int) -> Generation:
    """One row's new tokens up to its first end-of-turn (what follows is batch padding)."""
    eos = tokenizer.eos_token_id
    if eos in new:
        new = new[: new.index(eos) + 1]
    return Generation(
        text=tokenizer.decode(new, skip_special_tokens=True).strip(),
        prompt_tokens=prompt_tokens,
        completion_tokens=len(new),
        finish_reason="stop" if new and new[-1] == eos else "length",
    )


def _stop_when(should_stop: Callable[[], bool]) -> Any:
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _Stop(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            stop = should_stop()
            return torch.full(
                (input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device
            )

    return StoppingCriteriaList([_Stop()])
