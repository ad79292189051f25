"""Which training backend a run uses: the one place that reads ``training.backend``.

``build_trainer(settings, tenant_id=..., run_id=...)`` returns a :class:`Trainer` for
``"local"`` (this machine), ``"openai"`` (a hosted OpenAI-compatible fine-tuning API) or
``"ray"`` (Ray Train workers). Every backend takes the same call and returns the same
:class:`TrainingJob`, so the run, its MLflow record, the A/B test and the rollout do not care
which one trained the candidate. ``cancel_external_job`` is what an abort calls to stop a
hosted job that may still be running (it finds the job even if its id was never recorded).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from tuneloop.config import Settings
from tuneloop.dataset.examples import Prompts
from tuneloop.domain.clock import Clock, SystemClock
from tuneloop.train.port import Trainer
from tuneloop.train.tiny import TINY, PostPair, tiny_base_dir

if TYPE_CHECKING:
    from tuneloop.train.hosted.trainer import HostedTrainer


def base_model_for(settings: Settings) -> str:
    """The model the run fine-tunes: ``training.base_model``, or for the hosted backend the
    provider's model (``training.openai.base_model``) while it is left at ``"tiny"``."""
    training = settings.training
    if training.backend == "openai" and training.base_model == TINY:
        return training.openai.base_model
    return training.base_model


def build_trainer(
    settings: Settings,
    *,
    tenant_id: str,
    run_id: str,
    tiny_posts: Callable[[], Iterable[PostPair]] | None = None,
    clock: Clock | None = None,
    sleep: Callable[[float], None] = time.sleep,
    init_adapter: Path | None = None,
) -> Trainer:
    """The trainer ``settings.training.backend`` names, for one run of one tenant.

    ``tiny_posts`` feeds the built-in tiny base when it must be built (local and Ray);
    ``clock`` and ``sleep`` pace the hosted backend's polling (tests pass manual ones);
    ``init_adapter`` warm-starts local and Ray training from a saved adapter (a hosted
    warm start fine-tunes the champion's model instead: see ``base_model``).
    """
    backend = settings.training.backend
    if backend == "openai":
        return hosted_trainer(
            settings, tenant_id=tenant_id, run_id=run_id, clock=clock, sleep=sleep
        )
    device = None if settings.training.device == "auto" else settings.training.device
    d = settings.dataset
    prompts = Prompts(d.hook_prompt, d.body_prompt_suffix, d.system_prompt)
    tiny_dir = tiny_base_dir(settings.workspace, tenant_id)
    if backend == "ray":
        from tuneloop.train.ray_backend import RayTrainer

        ray = settings.training.ray
        return RayTrainer(
            tiny_dir=tiny_dir,
            tiny_posts=tiny_posts,
            tiny_prompts=prompts,
            num_workers=ray.num_workers,
            address=ray.address,
            use_gpu=ray.use_gpu,
            storage_path=ray.storage_path,
            init_adapter=init_adapter,
        )
    from tuneloop.train.local import LocalTrainer

    return LocalTrainer(
        tiny_dir=tiny_dir,
        device=device,
        tiny_posts=tiny_posts,
        tiny_prompts=prompts,
        init_adapter=init_adapter,
    )


def hosted_trainer(
    settings: Settings,
    *,
    tenant_id: str,
    run_id: str,
    clock: Clock | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> HostedTrainer:
    """The hosted backend, calling through this process's ``openai`` circuit breaker."""
    from tuneloop.resilience.registry import process_breaker
    from tuneloop.train.hosted.api import HostedAPI
    from tuneloop.train.hosted.trainer import HostedTrainer, PollPolicy

    hosted, key = settings.training.openai, settings.openai.api_key
    api = HostedAPI(
        base_url=settings.openai.base_url,
        api_key=key.get_secret_value() if key is not None else None,
        breaker=process_breaker("openai"),
        timeout_s=hosted.timeout_seconds,
        max_attempts=hosted.max_attempts,
        sleep=sleep,
    )
    price = hosted.price_per_million_training_tokens
    return HostedTrainer(
        api,
        tenant_id=tenant_id,
        run_id=run_id,
        clock=clock or SystemClock(),
        sleep=sleep,
        suffix=hosted.suffix or None,
        learning_rate_multiplier=hosted.learning_rate_multiplier,
        poll=PollPolicy(
            initial_s=hosted.poll_initial_seconds,
            max_s=hosted.poll_max_seconds,
            stuck_after_s=settings.training.stuck_after_minutes * 60,
        ),
        price_per_million_tokens=(
            settings.dataset.price_per_million_training_tokens if price is None else price
        ),
    )


def cancel_external_job(
    settings: Settings, *, tenant_id: str, run_id: str, output_dir: Path | None
) -> str | None:
    """Cancel the run's hosted job if it is still going; returns its id if one was cancelled."""
    trainer = hosted_trainer(settings, tenant_id=tenant_id, run_id=run_id)
    return trainer.cancel(output_dir)
