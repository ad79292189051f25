"""The local model server on the tiny base: warm-up, batching, the adapter cache, errors."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

pytestmark = pytest.mark.train
torch = pytest.importorskip("torch")

from safetensors.torch import load_file, save_file  # noqa: E402

from tuneloop.config import LocalServingSettings  # noqa: E402
from tuneloop.errors import (  # noqa: E402
    ExternalServiceError,
    InvalidInputError,
    InvalidStateError,
)
from tuneloop.serving.loaded import ModelUnavailableError  # noqa: E402
from tuneloop.serving.local import LocalModel, LocalModelServer  # noqa: E402
from tuneloop.train.generate import Generation, TextGenerator  # noqa: E402
from tuneloop.train.port import TrainingJob  # noqa: E402

T = TypeVar("T")
PROMPTS = [
    "Create engaging content",
    "Write a hook about coffee",
    "hi",
    "Tell me something about remote work and teams",
    "Morning routines",
    "Another prompt here please",
]
TOKENS = 24


def chat(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


def settings(**changes: Any) -> LocalServingSettings:
    return LocalServingSettings(device="cpu", num_threads=1, warmup=False).model_copy(
        update=changes
    )


def serve(
    config: LocalServingSettings,
    tiny_dir: Path | None,
    body: Callable[[LocalModelServer], Awaitable[T]],
) -> T:
    """Run ``body`` against a started server, closing it afterwards."""

    async def main() -> T:
        server = LocalModelServer(config, tiny_dir=tiny_dir)
        try:
            await server.start()
            return await body(server)
        finally:
            await server.aclose()

    return asyncio.run(main())


@pytest.fixture(scope="module")
def adapter(trained: tuple[TrainingJob, list[Any]]) -> Path:
    assert trained[0].adapter_path is not None
    return trained[0].adapter_path


@pytest.fixture(scope="module")
def other_adapter(adapter: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second adapter for the same base: the trained one with its B matrices tripled."""
    out = tmp_path_factory.mktemp("other") / "adapter"
    shutil.copytree(adapter, out)
    weights = load_file(str(adapter / "adapter_model.safetensors"))
    tripled = {k: v * 3 if "lora_B" in k else v for k, v in weights.items()}
    save_file(tripled, str(out / "adapter_model.safetensors"))
    return out


@pytest.fixture(scope="module")
def reference(tiny_base: Path, adapter: Path) -> dict[str | None, list[Generation]]:
    """Greedy outputs of TextGenerator, one prompt at a time: the base, and base + adapter.

    The adapter is left unmerged, as the server runs it: merged weights round differently.
    """
    out: dict[str | None, list[Generation]] = {}
    for path in (None, adapter):
        generator = TextGenerator.load(tiny_base, path, device="cpu", merge=False, num_threads=1)
        out[None if path is None else str(path)] = [
            generator.generate(p, max_new_tokens=TOKENS) for p in PROMPTS
        ]
    return out


def test_ready_only_after_the_warm_up_loaded_and_ran_the_models(
    tiny_base: Path, adapter: Path
) -> None:
    async def main() -> None:
        server = LocalModelServer(settings(warmup=True), tiny_dir=tiny_base)
        assert not server.ready
        warming = asyncio.create_task(
            server.start([LocalModel("tiny"), LocalModel("tiny", str(adapter))])
        )
        await asyncio.sleep(0.01)
        assert not server.ready and not warming.done()  # loading takes longer than that
        await warming
        assert server.ready
        stats = server.stats()
        assert (stats["loaded_bases"], stats["loaded_adapters"]) == (1, 1)
        assert (stats["requests"], stats["batches"]) == (2, 2)  # one generation per model
        await server.aclose()
        assert not server.ready

        lazy = LocalModelServer(settings(warmup=False), tiny_dir=tiny_base)
        assert lazy.ready  # without warm-up there is nothing to wait for
        await lazy.start([LocalModel("tiny")])
        assert lazy.ready and lazy.stats()["loaded_bases"] == 0  # loads on the first request
        await lazy.aclose()
        assert not lazy.ready

    asyncio.run(main())


def test_base_and_adapter_outputs_equal_text_generators(
    tiny_base: Path, adapter: Path, reference: dict[str | None, list[Generation]]
) -> None:
    base, tuned = LocalModel("tiny"), LocalModel(str(tiny_base), str(adapter))

    async def body(server: LocalModelServer) -> list[list[Generation]]:
        runs = []
        for model in (base, tuned, base):  # the base again, now behind disable_adapter()
            runs.append([await server.generate(model, chat(p), max_tokens=TOKENS) for p in PROMPTS])
        assert server.stats()["loaded_bases"] == 1  # "tiny" and its path are one base
        return runs

    before, with_adapter, after = serve(settings(), tiny_base, body)
    assert before == reference[None] == after
    assert with_adapter == reference[str(adapter)]
    assert sum(a.text != b.text for a, b in zip(before, with_adapter, strict=True)) >= 3


def test_concurrent_requests_share_batches_and_generate_what_they_would_alone(
    tiny_base: Path, adapter: Path
) -> None:
    models = [LocalModel("tiny"), LocalModel("tiny", str(adapter))] * 3
    limits = [TOKENS, 5, TOKENS, 12, 3, TOKENS]  # one batch runs them all to the largest

    async def body(server: LocalModelServer) -> tuple[list[Generation], list[Generation]]:
        calls = list(zip(models, PROMPTS, limits, strict=True))
        alone = [await server.generate(m, chat(p), max_tokens=n) for m, p, n in calls]
        first = server.stats()
        together = await asyncio.gather(
            *(server.generate(m, chat(p), max_tokens=n) for m, p, n in calls)
        )
        stats = server.stats()
        assert first["batches"] == 6
        assert stats["batches"] - first["batches"] == 2  # one per model
        assert stats["requests"] == 12 and stats["failed"] == 0
        return alone, list(together)

    alone, together = serve(settings(batch_wait_ms=200.0), tiny_base, body)
    assert together == alone
    assert [g.completion_tokens <= n for g, n in zip(alone, limits, strict=True)] == [True] * 6
    assert alone[4].finish_reason == "length" and alone[4].completion_tokens == 3


def test_the_adapter_cache_keeps_the_most_recent_and_evicts_with_peft(
    tiny_base: Path, adapter: Path, other_adapter: Path, tmp_path: Path
) -> None:
    second_base = shutil.copytree(tiny_base, tmp_path / "tiny-copy")  # another base key
    a, b = LocalModel("tiny", str(adapter)), LocalModel("tiny", str(other_adapter))
    bare, elsewhere = LocalModel("tiny"), LocalModel(str(second_base), str(adapter))

    async def body(server: LocalModelServer) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name, model in [("a", a), ("a", a), ("b", b), ("a", a), ("x", elsewhere)]:
            generation = await server.generate(model, chat(PROMPTS[0]), max_tokens=TOKENS)
            out.setdefault(name, []).append(generation.text)
        # a's eviction took the last adapter off the first base: it is plain again.
        out["bare"] = [(await server.generate(bare, chat(PROMPTS[0]), max_tokens=TOKENS)).text]
        stats = server.stats()
        assert (stats["adapter_hits"], stats["adapter_misses"]) == (1, 4)
        assert (stats["adapter_evictions"], stats["loaded_adapters"]) == (3, 1)
        assert stats["loaded_bases"] == 2
        return out

    out = serve(settings(adapter_cache_size=1), tiny_base, body)
    assert out["a"][0] == out["a"][1] == out["a"][2] == out["x"][0]  # reloaded, same output
    assert out["b"][0] != out["a"][0]
    base_text = TextGenerator.load(tiny_base, device="cpu", num_threads=1).generate(
        PROMPTS[0], max_new_tokens=TOKENS
    )
    assert out["bare"] == [base_text.text] != out["a"][:1]


def test_bad_models_fail_as_unavailable_without_server_paths(
    tiny_base: Path,
    adapter: Path,
    tmp_path: Path,
    reference: dict[str | None, list[Generation]],
) -> None:
    missing, unweighted, misshapen = (tmp_path / n for n in ("none", "unweighted", "misshapen"))
    for copy in (unweighted, misshapen):
        shutil.copytree(adapter, copy)
    (unweighted / "adapter_model.safetensors").unlink()
    weights = load_file(str(adapter / "adapter_model.safetensors"))
    narrow = {k: v[:, :3].contiguous() if "lora_A" in k else v for k, v in weights.items()}
    save_file(narrow, str(misshapen / "adapter_model.safetensors"))  # for another base

    async def body(server: LocalModelServer) -> Generation:
        # absent; no adapter_config.json; no weights; weights PEFT fails on half-way through
        for path in (missing, tiny_base, unweighted, misshapen):
            with pytest.raises(ModelUnavailableError, match="adapter") as failed:
                await server.generate(LocalModel("tiny", str(path)), chat("hi"))
            assert str(tmp_path) not in str(failed.value)  # no server paths in the answer
        absent_base = str(tmp_path / "no-such-base")
        with pytest.raises(ModelUnavailableError, match="base model is not on this") as failed:
            await server.generate(LocalModel(absent_base, str(adapter)), chat("hi"))
        assert str(tmp_path) not in str(failed.value)
        return await server.generate(LocalModel("tiny"), chat(PROMPTS[0]), max_tokens=TOKENS)

    # Still serving, and the base is clean of the half-loaded adapter (it was reloaded).
    assert serve(settings(), tiny_base, body) == reference[None][0]

    async def no_tiny(server: LocalModelServer) -> None:
        with pytest.raises(ModelUnavailableError, match="'tiny' is not built on this server"):
            await server.generate(LocalModel("tiny"), chat("hi"))

    serve(settings(), None, no_tiny)


def test_a_seeded_sample_does_not_depend_on_its_company(tiny_base: Path) -> None:
    model, sampling = LocalModel("tiny"), {"temperature": 1.0, "top_p": 0.9, "seed": 7}

    async def body(server: LocalModelServer) -> tuple[str, list[str]]:
        alone = await server.generate(model, chat(PROMPTS[0]), **sampling)
        crowd = await asyncio.gather(
            *(server.generate(model, chat(PROMPTS[0]), **sampling) for _ in range(4))
        )
        return alone.text, [g.text for g in crowd]

    # In one batch the four would share a random stream, and all but the first differ.
    alone, crowd = serve(settings(batch_wait_ms=200.0), tiny_base, body)
    assert crowd == [alone] * 4


def test_a_failing_request_fails_alone_in_its_batch(tiny_base: Path) -> None:
    too_long = " ".join(["word"] * 400)  # past the tiny base's 256 positions

    async def body(server: LocalModelServer) -> list[Generation | BaseException]:
        model = LocalModel("tiny")
        return await asyncio.gather(
            *(server.generate(model, chat(p), max_tokens=4) for p in ["hi", too_long, "yo"]),
            return_exceptions=True,
        )

    short, long, other = serve(settings(batch_wait_ms=200.0), tiny_base, body)
    assert isinstance(short, Generation) and isinstance(other, Generation)
    assert isinstance(long, InvalidInputError)


def test_aclose_fails_pending_requests_and_refuses_new_ones(tiny_base: Path) -> None:
    async def main() -> None:
        server = LocalModelServer(settings(batch_wait_ms=300.0), tiny_dir=tiny_base)
        await server.start()
        pending = [
            asyncio.create_task(
                server.generate(LocalModel("tiny"), chat(p), temperature=1.0, seed=i)
            )
            for i, p in enumerate(PROMPTS[:3])
        ]
        await asyncio.sleep(0.05)  # queued, and the worker is waiting for company
        await server.aclose()
        for task in pending:
            with pytest.raises(ExternalServiceError, match="closed before the request"):
                await task
        with pytest.raises(InvalidStateError, match="closed"):
            await server.generate(LocalModel("tiny"), chat("hi"))
        assert server.stats()["failed"] == 3

    asyncio.run(main())
