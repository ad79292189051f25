"""The Ray backend: the local LoRA training run data-parallel by Ray Train's ``TorchTrainer``.

Usage (``tuneloop.train.backends.build_trainer`` builds it from ``training.ray``)::

    job = RayTrainer(tiny_dir=..., num_workers=2).train(
        dataset_dir=..., base_model="tiny", hyperparams=Hyperparameters(), output_dir=...)

Each of ``num_workers`` workers runs the same :class:`~tuneloop.train.local.LocalTrainer`
job; Ray sets up ``torch.distributed`` (gloo on CPU, NCCL with ``use_gpu``), so the
transformers ``Trainer`` wraps the model in DDP and gives each worker its shard of the
examples (``batch_size`` is per worker). Every worker shares ``output_dir``: rank 0 writes
the checkpoints (one per epoch), the adapter and the job record, so a second call resumes
from the last complete checkpoint exactly like the local backend. Each step's metrics and
the final adapter are reported to Ray (kept under ``storage_path``). On a cluster,
``output_dir`` and ``storage_path`` must be storage every worker can reach.

A stop request (``should_stop``) is passed to the workers through a file in ``output_dir``;
they agree on it with an all-reduce at each step, so all stop after the same step and
``fit`` returns: the Ray job ends and the job comes back ``"aborted"``.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from tuneloop.dataset.examples import Prompts
from tuneloop.errors import InvalidInputError, TrainingError
from tuneloop.train.hyperparams import Hyperparameters
from tuneloop.train.local import LocalTrainer
from tuneloop.train.port import AbortPolicy, OnStep, ShouldStop, TrainingJob
from tuneloop.train.tiny import PostPair
from tuneloop.train.workdir import claim, complete_checkpoints, dataset_fingerprint, finished_job

STOP_FILE = "STOP"


class RayTrainer:
    """Fine-tunes on Ray workers; see the module docstring."""

    backend = "ray"

    def __init__(
        self,
        *,
        tiny_dir: Path | None = None,
        tiny_posts: Callable[[], Iterable[PostPair]] | None = None,
        tiny_prompts: Prompts = Prompts(),
        num_workers: int = 2,
        address: str | None = None,
        use_gpu: bool = False,
        storage_path: str | None = None,
        threads_per_worker: int = 1,
        init_adapter: Path | None = None,
    ) -> None:
        self.local = LocalTrainer(
            tiny_dir=tiny_dir, tiny_posts=tiny_posts, tiny_prompts=tiny_prompts
        )
        self.num_workers, self.address, self.use_gpu = num_workers, address, use_gpu
        self.storage_path, self.threads = storage_path, threads_per_worker
        self.init_adapter = init_adapter

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
        base = self.local.resolve_base(base_model)  # built here once, not by every worker
        output_dir = output_dir.resolve()
        request = _request(dataset_dir, base, hyperparams)
        if self.init_adapter is not None:
            request["init_adapter"] = str(self.init_adapter.resolve())
        claim(output_dir, request, resume=resume)
        if (done := finished_job(output_dir)) is not None:
            return done
        (output_dir / STOP_FILE).unlink(missing_ok=True)
        config = {
            "dataset_dir": str(dataset_dir.resolve()),
            "base": base,
            "hyperparams": hyperparams.to_params(),
            "output_dir": str(output_dir),
            "threads": self.threads,
            "device": "cuda" if self.use_gpu else "cpu",
            "init_adapter": str(self.init_adapter.resolve()) if self.init_adapter else None,
        }
        try:
            with warnings.catch_warnings():  # Ray's own deprecation notices (its Data context)
                warnings.simplefilter("ignore", DeprecationWarning)
                result = self._fit(config, output_dir, should_stop)
        except TrainingError:
            raise
        except Exception as exc:  # ray, torch: one error type out
            raise TrainingError(f"Ray training failed: {type(exc).__name__}: {exc}") from exc
        job = finished_job(output_dir)  # None: stopped before the end (or a stop came late)
        if job is None:
            return TrainingJob(
                backend=self.backend,
                status="aborted",
                base_model=base,
                output_dir=output_dir,
                hyperparams=hyperparams,
                adapter_path=None,
                checkpoints=tuple(complete_checkpoints(output_dir)),
            )
        for progress in job.steps:  # the workers' steps, reported once the job is back
            if on_step is not None:
                on_step(progress)
        details = job.details | {"num_workers": self.num_workers, "ray_checkpoint": result}
        ray_job = replace(job, backend=self.backend, details=details)
        ray_job.save(output_dir / "job.json")
        return ray_job

    def _fit(
        self, config: dict[str, Any], output_dir: Path, should_stop: ShouldStop | None
    ) -> str | None:
        import ray
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchConfig, TorchTrainer

        started_here = not ray.is_initialized()
        if started_here:
            local = self.address is None and not os.environ.get("RAY_ADDRESS")
            ray.init(
                address=self.address,
                num_cpus=self.num_workers * self.threads + 1 if local else None,
                include_dashboard=False,
                log_to_driver=False,
            )
        watcher = _StopWatcher(should_stop, output_dir / STOP_FILE)
        try:
            trainer = TorchTrainer(
                _worker_loop,
                train_loop_config=config,
                torch_config=TorchConfig(backend="nccl" if self.use_gpu else "gloo"),
                scaling_config=ScalingConfig(
                    num_workers=self.num_workers,
                    use_gpu=self.use_gpu,
                    resources_per_worker={"CPU": self.threads},
                ),
                run_config=RunConfig(
                    name="job",
                    storage_path=str(Path(self.storage_path or output_dir / "ray").resolve())
                    if "://" not in (self.storage_path or "")
                    else self.storage_path,
                ),
            )
            watcher.start()
            result = trainer.fit()
        finally:
            watcher.stop()
            if started_here:
                ray.shutdown()
        if result.error is not None:
            raise TrainingError(f"Ray training failed: {result.error}")
        return None if result.checkpoint is None else str(result.checkpoint.path)


def _worker_loop(config: dict[str, Any]) -> None:
    """One Ray worker: the local job on this rank, stopping when all ranks agree to."""
    import ray.train
    import torch
    import torch.distributed as dist
    from ray.train import Checkpoint

    rank = ray.train.get_context().get_world_rank()
    stop_file = Path(config["output_dir"]) / STOP_FILE

    def should_stop() -> bool:  # a collective: every rank calls it at the same points
        flag = torch.tensor([1.0 if stop_file.exists() else 0.0])
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item() > 0)

    def on_step(progress: Any) -> None:
        ray.train.report({"step": progress.step, "loss": progress.loss})

    init = config.get("init_adapter")
    trainer = LocalTrainer(
        device=config["device"],
        num_threads=config["threads"],
        rank=rank,
        init_adapter=Path(init) if init else None,
    )
    job = trainer.train(
        dataset_dir=Path(config["dataset_dir"]),
        base_model=config["base"],
        hyperparams=Hyperparameters.from_params(config["hyperparams"]),
        output_dir=Path(config["output_dir"]),
        on_step=on_step,
        should_stop=should_stop,
    )
    adapter = job.adapter_path if rank == 0 else None
    checkpoint = Checkpoint.from_directory(str(adapter)) if adapter is not None else None
    ray.train.report(
        {"done": 1.0, "aborted": float(job.status == "aborted")}, checkpoint=checkpoint
    )


class _StopWatcher:
    """Turns the driver's ``should_stop`` into the workers' stop file."""

    def __init__(self, should_stop: ShouldStop | None, path: Path) -> None:
        self.should_stop, self.path = should_stop, path
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> None:
        if self.should_stop is not None:
            self.thread.start()

    def stop(self) -> None:
        self.done.set()

    def _watch(self) -> None:
        assert self.should_stop is not None
        while not self.done.wait(0.2):
            if self.should_stop():
                self.path.touch()
                return


def _request(dataset_dir: Path, base: str, hyperparams: Hyperparameters) -> dict[str, Any]:
    """The job's identity: the same as the local backend's, so either may resume it."""
    return {
        "backend": LocalTrainer.backend,
        "dataset": dataset_fingerprint(dataset_dir),
        "base_model": base,
        "hyperparams": hyperparams.to_params(),
    }
