"""transformers ``TrainerCallback``s: per-step progress out, the abort signal in.

:class:`StepReporter` turns each logged step (``logging_steps=1``) into a
:class:`~tuneloop.train.port.StepProgress` for ``on_step``, and polls ``should_stop`` after
every optimizer step, before and after reporting it. On a stop the loop ends after the step
in progress and the checkpoint of an unfinished epoch is vetoed, so an abort leaves only
the checkpoints of finished epochs behind.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from tuneloop.train.port import OnStep, ShouldStop, StepProgress


class StepReporter(TrainerCallback):
    def __init__(self, on_step: OnStep | None, should_stop: ShouldStop | None) -> None:
        self.on_step = on_step
        self.should_stop = should_stop
        self.aborted = False
        self.tokens_at_start = 0  # of this attempt (a resumed job starts from its checkpoint's)

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.tokens_at_start = state.num_input_tokens_seen

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._poll(control)

    def on_epoch_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        finished = state.epoch is not None and abs(state.epoch - round(state.epoch)) < 1e-9
        if self.aborted and not finished:  # the default flow asks to save a partial epoch
            control.should_save = False
            control.should_evaluate = False

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        if self.on_step is not None and logs and "loss" in logs:
            self.on_step(
                _progress(
                    logs,
                    step=state.global_step,
                    total=state.max_steps,
                    tokens=state.num_input_tokens_seen,
                )
            )
        self._poll(control)  # again: a stop asked for while the step was reported ends it here

    def _poll(self, control: TrainerControl) -> None:
        if not self.aborted and self.should_stop is not None and self.should_stop():
            self.aborted = True
        if self.aborted:
            control.should_training_stop = True


def steps_from_history(
    history: Iterable[dict[str, Any]], total_steps: int
) -> tuple[StepProgress, ...]:
    """Every step's progress from ``TrainerState.log_history`` (restored on resume)."""
    by_step: dict[int, StepProgress] = {}
    for entry in history:
        if "loss" in entry and "step" in entry:
            by_step[int(entry["step"])] = _progress(
                entry,
                step=int(entry["step"]),
                total=total_steps,
                tokens=int(entry.get("num_input_tokens_seen", 0)),
            )
    return tuple(by_step[step] for step in sorted(by_step))


def _progress(logs: dict[str, Any], *, step: int, total: int, tokens: int) -> StepProgress:
    return StepProgress(
        step=step,
        total_steps=total,
        epoch=float(logs.get("epoch", 0.0)),
        loss=float(logs["loss"]),
        learning_rate=float(logs.get("learning_rate", 0.0)),
        tokens_seen=int(tokens),
    )
