"""Hash assignment: pinned values, uniformity, stickiness, multi-arm, split changes."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from tuneloop.errors import InvalidInputError
from tuneloop.experiments.assignment import Assigner, assign, bucket, buckets, segments

KEY = "ab-test-20250102-001"
MILLION = [f"user-{index}" for index in range(1_000_000)]


def test_buckets_are_pinned_forever() -> None:
    # Changing any of these moves live users between arms: never edit them to make a test pass.
    assert bucket(KEY, "user-1") == 0.6914652801823669
    assert bucket(KEY, "user-2") == 0.5676958882281422
    assert bucket("ab-test-20250102-002", "user-1") == 0.5189967699854973
    assert bucket("exp", "é-ünit") == 0.7091101444216752


def test_bucket_follows_the_documented_recipe() -> None:
    seed = xxhash.xxh3_64_intdigest(KEY.encode())
    h = xxhash.xxh3_64_intdigest(b"user-42", seed)
    assert bucket(KEY, "user-42") == (h >> 11) / 2**53


def test_vectorised_buckets_equal_the_scalar_ones() -> None:
    ids = MILLION[:2000]
    assert buckets(KEY, ids).tolist() == [bucket(KEY, unit) for unit in ids]


def test_a_million_buckets_are_uniform() -> None:
    values = buckets(KEY, MILLION)
    assert values.min() >= 0.0
    assert values.max() < 1.0
    counts = np.bincount((values * 1000).astype(int), minlength=1000)
    chi2 = stats.chisquare(counts)
    assert chi2.pvalue > 0.001, chi2  # deterministic: the ids and the key are fixed
    # Sequential ids must not leave a trace in neighbouring buckets either.
    assert abs(np.corrcoef(values[:-1], values[1:])[0, 1]) < 0.005


def test_experiments_randomise_independently() -> None:
    first = buckets("ab-test-20250102-001", MILLION[:200_000])
    second = buckets("ab-test-20250102-002", MILLION[:200_000])
    assert abs(np.corrcoef(first, second)[0, 1]) < 0.01
    # The same unit lands in the candidate of both 50/50 tests only about a quarter of the time.
    both = np.mean((first < 0.5) & (second < 0.5))
    assert both == pytest.approx(0.25, abs=0.005)


def test_assignment_is_the_same_in_another_process_with_another_hash_seed() -> None:
    ids = MILLION[:500]
    arms = [("baseline", 0.7), ("candidate", 0.3)]
    script = (
        "import sys, json; from tuneloop.experiments.assignment import Assigner; "
        f"a = Assigner({KEY!r}, {arms!r}); "
        "print(json.dumps([a.assign(f'user-{i}') for i in range(500)]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, check=True)
    here = Assigner(KEY, arms)
    assert out.stdout.decode().strip() == str([here.assign(u) for u in ids]).replace("'", '"')


def test_two_arms_get_their_weights() -> None:
    arms = Assigner(KEY, [("baseline", 0.9), ("candidate", 0.1)]).assign_many(MILLION[:200_000])
    candidate = arms.count("candidate")
    # binomial(200k, 0.1): sd ~134; 5 sd either way
    assert abs(candidate - 20_000) < 5 * 134


def test_many_arms_get_their_weights() -> None:
    names = ["baseline", "a", "b", "c"]
    weights = [0.4, 0.2, 0.2, 0.2]
    assigned = Assigner(KEY, list(zip(names, weights, strict=True))).assign_many(MILLION[:200_000])
    counts = np.array([assigned.count(name) for name in names])
    fit = stats.chisquare(counts, f_exp=np.array(weights) * counts.sum())
    assert fit.pvalue > 0.001


def test_single_assign_equals_the_assigner() -> None:
    arms = [("baseline", 0.5), ("a", 0.25), ("b", 0.25)]
    assigner = Assigner(KEY, arms)
    ids = MILLION[:3000]
    assert [assign(KEY, unit, arms) for unit in ids] == assigner.assign_many(ids)
    assert [assigner.assign(unit) for unit in ids] == assigner.assign_many(ids)


def test_growing_the_candidate_keeps_everyone_already_in_it() -> None:
    ids = MILLION[:100_000]
    before = Assigner(KEY, [("baseline", 0.9), ("candidate", 0.1)]).assign_many(ids)
    after = Assigner(KEY, [("baseline", 0.8), ("candidate", 0.2)]).assign_many(ids)
    moved = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
    assert set(moved) == {("baseline", "candidate")}
    # Only the new 10% moved: the least any split change can move.
    assert len(moved) / len(ids) == pytest.approx(0.10, abs=0.005)


def test_shrinking_an_arm_only_returns_units_to_the_baseline() -> None:
    ids = MILLION[:100_000]
    before = Assigner(KEY, [("baseline", 0.4), ("a", 0.3), ("b", 0.3)]).assign_many(ids)
    after = Assigner(KEY, [("baseline", 0.5), ("a", 0.2), ("b", 0.3)]).assign_many(ids)
    moved = {(old, new) for old, new in zip(before, after, strict=True) if old != new}
    assert moved == {("a", "baseline")}
    assert [u for u, arm in zip(ids, before, strict=True) if arm == "b"] == [
        u for u, arm in zip(ids, after, strict=True) if arm == "b"
    ]


@settings(max_examples=60, deadline=None)
@given(
    share=st.floats(min_value=0.0, max_value=0.5),
    grow=st.floats(min_value=0.0, max_value=0.5),
)
def test_any_growth_of_a_two_arm_split_is_monotone(share: float, grow: float) -> None:
    ids = MILLION[:5000]
    small = Assigner(KEY, [("baseline", 1 - share), ("candidate", share)]).assign_many(ids)
    big = Assigner(KEY, [("baseline", 1 - share - grow), ("candidate", share + grow)]).assign_many(
        ids
    )
    assert all(
        new == "candidate" for old, new in zip(small, big, strict=True) if old == "candidate"
    )


def test_segments_lay_candidates_from_fixed_slot_starts() -> None:
    laid = segments([("baseline", 0.2), ("a", 0.4), ("b", 0.4)])
    assert [(s.start, s.end, s.arm) for s in laid] == [
        (0.0, 0.4, "a"),
        (0.4, 0.5, "baseline"),
        (0.5, 0.9, "b"),
        (0.9, 1.0, "baseline"),
    ]
    assert [s.arm for s in segments([("baseline", 1.0), ("candidate", 0.0)])] == ["baseline"]


@pytest.mark.parametrize(
    ("arms", "message"),
    [
        ([], "at least one arm"),
        ([("baseline", 0.5), ("baseline", 0.5)], "unique"),
        ([("baseline", 0.7), ("candidate", 0.2)], "add up to 1"),
        ([("baseline", 1.2), ("candidate", -0.2)], "lie in [0, 1]"),
        ([("baseline", 0.1), ("a", 0.6), ("b", 0.3)], "at most 0.5000"),
    ],
)
def test_bad_arms_are_refused(arms: list[tuple[str, float]], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Assigner(KEY, arms)
