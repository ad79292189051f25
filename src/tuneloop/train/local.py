"""The local backend: LoRA fine-tuning with transformers + PEFT, through TRL's SFTTrainer.

Usage::

    from tuneloop.train.local import LocalTrainer
    job = LocalTrainer(tiny_dir=workspace / "models/tiny", tiny_posts=lambda: pairs).train(
        dataset_dir=dataset.path, base_model="tiny", hyperparams=Hyperparameters(),
        output_dir=workspace / "runs" / run_id, on_step=print, should_stop=stop_event.is_set,
    )
    job.adapter_path  # load with tuneloop.train.generate.TextGenerator.load(job.base_model, ...)

``base_model`` is a hub id or a local directory, loaded with
``AutoModelForCausalLM.from_pretrained``; ``"tiny"`` is the built-in base in ``tiny_dir``
(built from ``tiny_posts`` when the directory does not hold one yet, see
:mod:`tuneloop.train.tiny`).

What it does per job: encodes the dataset with the tokenizer's chat template and labels only
the assistant's tokens (:mod:`tuneloop.train.chat`); trains a LoRA adapter with TRL's
``SFTTrainer`` on the pre-tokenized examples, padding-free (:mod:`tuneloop.train.sft`,
:mod:`tuneloop.train.varlen`); saves a checkpoint per epoch and resumes from the last
complete one (:mod:`tuneloop.train.workdir`); reports every step; stops between steps when
``should_stop()`` turns true; and scores the final adapter on ``validation.jsonl`` with the
same masking as offline evaluation (:mod:`tuneloop.train.nll`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuneloop.dataset.examples import Prompts
from tuneloop.errors import ConfigurationError, InvalidInputError, TrainingError, TuneloopError
from tuneloop.train.chat import EncodedSet, encode_file, read_messages
from tuneloop.train.hyperparams import Hyperparameters
from tuneloop.train.port import AbortPolicy, OnStep, ShouldStop, TrainingJob
from tuneloop.train.runtime import (
    context_length,
    count_parameters,
    load_causal_lm,
    load_tokenizer,
    pick_device,
    torch_threads,
)
from tuneloop.train.tiny import TINY, PostPair, ensure_tiny_base, is_tiny_base
from tuneloop.train.workdir import (
    JOB,
    STAGING_PREFIX,
    after_abort,
    claim,
    complete_checkpoints,
    dataset_fingerprint,
    finished_job,
    publish,
    remove_partial,
)


class LocalTrainer:
    """Fine-tunes on this machine's CPU or GPU. See the module docstring."""

    backend = "local"

    def __init__(
        self,
        *,
        tiny_dir: Path | None = None,
        tiny_posts: Callable[[], Iterable[PostPair]] | None = None,
        tiny_prompts: Prompts = Prompts(),
        device: str | None = None,
        num_threads: int | None = None,
        keep_checkpoints: int | None = 2,
        rank: int = 0,
        init_adapter: Path | None = None,
    ) -> None:
        self.tiny_dir = tiny_dir
        # This process's rank in a distributed job (Ray): only rank 0 writes the job's files;
        # every rank shares ``output_dir`` (checkpoints hold each rank's RNG state).
        self.rank = rank
        # Warm start: a saved adapter (the champion's) whose weights the new LoRA starts from
        # instead of PEFT's zero-B init; it must have the same rank and target modules.
        self.init_adapter = init_adapter
        self.tiny_posts = tiny_posts
        self.tiny_prompts = tiny_prompts  # the dataset settings' prompts, for a new tiny base
        self.device = device
        self.num_threads = num_threads
        self.keep_checkpoints = keep_checkpoints

    def resolve_base(self, base_model: str) -> str:
        """``"tiny"`` as the directory of the built-in base (building it if need be)."""
        if base_model != TINY:
            return base_model
        if self.tiny_dir is None:
            raise ConfigurationError("base_model 'tiny' needs a tiny_dir to build it in")
        if not is_tiny_base(self.tiny_dir):
            if self.tiny_posts is None:
                raise ConfigurationError(
                    f"no tiny base in {self.tiny_dir} and no posts to build one"
                )
            ensure_tiny_base(
                self.tiny_dir,
                self.tiny_posts,
                prompts=self.tiny_prompts,
                num_threads=self.num_threads,
            )
        return str(self.tiny_dir.resolve())

    def train(
        self,
        *,
        dataset_dir: Path,
        base_model: str,
        hyperparams: Hyperparameters,
        output_dir: Path,
        resume: bool = True,
        on_step: OnStep | None = None,
        should_stop: ShouldStop | None = None,
        on_abort: AbortPolicy = "keep_checkpoints",
    ) -> TrainingJob:
        if not (dataset_dir / "train.jsonl").is_file():
            raise InvalidInputError(f"{dataset_dir} has no train.jsonl")
        base = self.resolve_base(base_model)
        request = {
            "backend": self.backend,
            "dataset": dataset_fingerprint(dataset_dir),
            "base_model": base,
            "hyperparams": hyperparams.to_params(),
        }
        if self.init_adapter is not None:
            request["init_adapter"] = str(self.init_adapter.resolve())
        if self.rank == 0:
            claim(output_dir, request, resume=resume)
        if (done := finished_job(output_dir)) is not None:
            return done
        if self.rank == 0:
            remove_partial(output_dir)  # a crash while writing a checkpoint leaves half of one
        try:
            with torch_threads(self.num_threads) as threads:
                job = _Job(self, dataset_dir, base, hyperparams, output_dir, threads)
                return job.run(on_step=on_step, should_stop=should_stop, on_abort=on_abort)
        except TuneloopError:
            raise
        except Exception as exc:  # torch, transformers, peft, trl: one error type out
            raise TrainingError(f"local training failed: {type(exc).__name__}: {exc}") from exc


class _Job:
    """One attempt at one training job (a resumed job is a new attempt)."""

    def __init__(
        self,
        owner: LocalTrainer,
        dataset_dir: Path,
        base: str,
        hyperparams: Hyperparameters,
        output_dir: Path,
        threads: int,
    ) -> None:
        self.owner, self.dataset_dir, self.base = owner, dataset_dir, base
        self.requested, self.output_dir, self.threads = hyperparams, output_dir, threads
        self.started = time.perf_counter()
        self.device = pick_device(owner.device)

    def run(
        self, *, on_step: OnStep | None, should_stop: ShouldStop | None, on_abort: AbortPolicy
    ) -> TrainingJob:
        from tuneloop.train.callbacks import StepReporter
        from tuneloop.train.sft import sft_trainer
        from tuneloop.train.varlen import varlen_attention

        tokenizer = load_tokenizer(self.base)
        model = load_causal_lm(self.base, device="cpu")  # the Trainer moves it
        n_train = sum(1 for _ in read_messages(self.dataset_dir / "train.jsonl"))
        hp = self.requested.resolve(
            n_train,
            self.device,
            model_max_length=context_length(model),
            model_parameters=count_parameters(model),
        )
        train_set = encode_file(
            tokenizer, self.dataset_dir / "train.jsonl", max_length=int(hp.max_length)
        )
        if not train_set.examples:
            raise InvalidInputError("no training example has an assistant token left")
        reporter = StepReporter(on_step, should_stop)
        trainer = sft_trainer(
            model,
            tokenizer,
            train_set.examples,
            hp,
            output_dir=self.output_dir,
            device=self.device,
            callbacks=[reporter],
            keep_checkpoints=self.owner.keep_checkpoints,
        )
        checkpoints = complete_checkpoints(self.output_dir)
        resumed_from = checkpoints[-1] if checkpoints else None
        if self.owner.init_adapter is not None and resumed_from is None:
            warm_start(trainer.model, self.owner.init_adapter)
        begin, begin_cpu = time.perf_counter(), time.process_time()
        if should_stop is None or not should_stop():
            with varlen_attention(model) if hp.padding_free else nullcontext():
                trainer.train(resume_from_checkpoint=str(resumed_from) if resumed_from else None)
        else:
            reporter.aborted = True
        seconds = (time.perf_counter() - begin, time.process_time() - begin_cpu)
        details = self._details(train_set, trainer, reporter.tokens_at_start, seconds)
        if reporter.aborted:
            return self._aborted(trainer, hp, resumed_from, on_abort, details)
        return self._finished(trainer, tokenizer, hp, resumed_from, details)

    def _details(
        self, train_set: EncodedSet, trainer: Any, start_tokens: int, seconds: tuple[float, float]
    ) -> dict[str, Any]:
        """This attempt's numbers; ``train_seconds`` is the wall time of the training loop."""
        wall, cpu = seconds
        session_tokens = trainer.state.num_input_tokens_seen - start_tokens
        return {
            "examples": len(train_set.examples),
            "truncated": train_set.truncated,
            "dropped": train_set.dropped,
            "num_threads": self.threads,
            "train_seconds": round(wall, 3),
            "train_cpu_seconds": round(cpu, 3),
            "session_tokens": session_tokens,
            "tokens_per_second": round(session_tokens / wall, 1) if wall > 0 else 0.0,
        }

    def _aborted(
        self,
        trainer: Any,
        hp: Hyperparameters,
        resumed_from: Path | None,
        policy: AbortPolicy,
        details: dict[str, Any],
    ) -> TrainingJob:
        from tuneloop.train.callbacks import steps_from_history

        checkpoints = tuple(complete_checkpoints(self.output_dir))
        left = after_abort(self.output_dir, policy) if self.owner.rank == 0 else ()
        return TrainingJob(
            backend=LocalTrainer.backend,
            status="aborted",
            base_model=self.base,
            output_dir=self.output_dir,
            hyperparams=hp,
            adapter_path=None,
            steps=steps_from_history(trainer.state.log_history, trainer.state.max_steps),
            tokens_seen=trainer.state.num_input_tokens_seen,
            checkpoints=checkpoints if policy == "keep_checkpoints" else (),
            resumed_from=resumed_from,
            left_behind=left,
            device=self.device,
            duration_seconds=round(time.perf_counter() - self.started, 3),
            details=details,
        )

    def _finished(
        self,
        trainer: Any,
        tokenizer: Any,
        hp: Hyperparameters,
        resumed_from: Path | None,
        details: dict[str, Any],
    ) -> TrainingJob:
        from tuneloop.train.callbacks import steps_from_history
        from tuneloop.train.nll import assistant_nll

        if self.owner.rank != 0:  # rank 0 saves, scores and records the job
            return TrainingJob(
                backend=LocalTrainer.backend,
                status="succeeded",
                base_model=self.base,
                output_dir=self.output_dir,
                hyperparams=hp,
                adapter_path=None,
                device=self.device,
                details=details,
            )
        staging = self.output_dir / f"{STAGING_PREFIX}adapter"
        trainer.model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        adapter = publish(staging, self.output_dir)
        validation = encode_file(
            tokenizer, self.dataset_dir / "validation.jsonl", max_length=int(hp.max_length)
        )
        val_loss = None
        if validation.examples:
            val_loss = assistant_nll(
                trainer.model,
                validation.examples,
                pad_token_id=tokenizer.pad_token_id,
                batch_size=int(hp.batch_size),
                device=self.device,
            ).loss
        steps = steps_from_history(trainer.state.log_history, trainer.state.max_steps)
        last_epoch = [s.loss for s in steps if s.epoch > float(hp.epochs) - 1]
        job = TrainingJob(
            backend=LocalTrainer.backend,
            status="succeeded",
            base_model=self.base,
            output_dir=self.output_dir,
            hyperparams=hp,
            adapter_path=adapter,
            steps=steps,
            tokens_seen=trainer.state.num_input_tokens_seen,
            train_loss=sum(last_epoch) / len(last_epoch) if last_epoch else None,
            validation_loss=val_loss,
            checkpoints=tuple(complete_checkpoints(self.output_dir)),
            resumed_from=resumed_from,
            device=self.device,
            duration_seconds=round(time.perf_counter() - self.started, 3),
            details=details | {"validation_examples": len(validation.examples)},
        )
        job.save(self.output_dir / JOB)
        return job


def warm_start(model: Any, adapter: Path) -> None:
    """Load a saved LoRA adapter's weights into the (fresh) LoRA of ``model``."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = adapter / "adapter_model.safetensors"
    if not weights.is_file():
        raise InvalidInputError(f"warm start: {adapter} holds no adapter_model.safetensors")
    result = set_peft_model_state_dict(model, load_file(str(weights)))
    missing = [k for k in getattr(result, "missing_keys", []) if "lora_" in k]
    if missing:
        raise InvalidInputError(
            f"warm start: {adapter} does not fit this LoRA (rank or target modules differ); "
            f"missing {missing[0]} and {len(missing) - 1} more"
        )


if TYPE_CHECKING:
    from tuneloop.train.port import Trainer

    _conforms: type[Trainer] = LocalTrainer  # mypy checks the port's signature here
