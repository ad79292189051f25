"""Hyperparameters: validation, the "auto" rules, and the flat round trip (no torch needed)."""

from __future__ import annotations

import pytest

from tuneloop.errors import InvalidInputError
from tuneloop.train.hyperparams import AUTO, Hyperparameters


def test_defaults_are_auto_and_resolve_for_a_small_cpu_dataset() -> None:
    auto = Hyperparameters()
    assert not auto.is_resolved
    resolved = auto.resolve(218, "cpu", model_max_length=256, model_parameters=600_000)
    assert resolved.is_resolved
    assert resolved.epochs == 7  # ceil(1500 / 218)
    assert resolved.batch_size == 8
    assert resolved.learning_rate == pytest.approx(5e-3)  # a small model
    assert resolved.max_length == 256  # the model's context
    assert resolved.target_modules == ("all-linear",)


def test_auto_rules_at_the_edges() -> None:
    big = Hyperparameters().resolve(50_000, "cuda:0", model_parameters=7_000_000_000)
    assert (big.epochs, big.batch_size, big.learning_rate, big.max_length) == (2, 16, 2e-4, 1024)
    tiny = Hyperparameters().resolve(10, "cpu")
    assert tiny.epochs == 10  # capped
    assert tiny.batch_size == 2  # at most a quarter of the examples: several steps an epoch
    assert tiny.learning_rate == pytest.approx(2e-4)  # unknown size: the usual LoRA rate


def test_explicit_values_survive_resolution() -> None:
    chosen = Hyperparameters(
        epochs=3, learning_rate=1e-3, batch_size=4, max_length=128, target_modules=("c_attn",)
    )
    assert chosen.resolve(1000, "cuda") == chosen


def test_resolving_for_no_examples_is_refused() -> None:
    with pytest.raises(InvalidInputError):
        Hyperparameters().resolve(0, "cpu")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("epochs", 0),
        ("batch_size", -1),
        ("learning_rate", 0.0),
        ("learning_rate", float("nan")),
        ("lora_r", 0),
        ("lora_dropout", 1.0),
        ("max_length", 4),
        ("target_modules", ()),
        ("epochs", True),
        ("warmup_ratio", 1.5),
    ],
)
def test_invalid_values_are_refused_with_the_field_named(field: str, value: object) -> None:
    with pytest.raises(InvalidInputError) as caught:
        Hyperparameters(**{field: value})  # type: ignore[arg-type]
    assert [problem.where for problem in caught.value.problems] == [field]


def test_params_are_flat_scalars_and_round_trip() -> None:
    original = Hyperparameters(epochs=4, target_modules=("q_proj", "v_proj"), padding_free=False)
    params = original.to_params()
    assert all(isinstance(value, str | int | float | bool) for value in params.values())
    assert params["target_modules"] == "q_proj,v_proj"
    assert params["learning_rate"] == AUTO
    assert Hyperparameters.from_params(params) == original
    as_strings = {key: str(value) for key, value in params.items()}  # e.g. from MLflow
    assert Hyperparameters.from_params(as_strings) == original


def test_unknown_or_unreadable_params_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="unknown"):
        Hyperparameters.from_params({"epochs": 2, "momentum": 0.9})
    with pytest.raises(InvalidInputError, match="epochs"):
        Hyperparameters.from_params({"epochs": "three"})
