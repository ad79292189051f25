"""Experiment states: every allowed transition and every refused one; moments arithmetic."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tuneloop.domain.experiments import (
    TRANSITIONS,
    ExperimentStatus,
    Moments,
    SuccessCriteria,
    can_transition,
    check_transition,
)
from tuneloop.errors import InvalidStateError

S = ExperimentStatus
ALLOWED = {
    (S.DRAFT, S.RUNNING),
    (S.DRAFT, S.STOPPED),
    (S.RUNNING, S.STOPPED),
    (S.RUNNING, S.DECIDED),
    (S.STOPPED, S.DECIDED),
}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(S, S)))
def test_only_the_lifecycle_transitions_are_allowed(current: S, target: S) -> None:
    assert can_transition(current, target) == ((current, target) in ALLOWED)
    if (current, target) in ALLOWED:
        check_transition("e", current, target)
    else:
        with pytest.raises(InvalidStateError, match=f"is {current}; it cannot become {target}"):
            check_transition("e", current, target)


def test_decided_is_final() -> None:
    assert TRANSITIONS[S.DECIDED] == frozenset()


def test_moments_give_the_sample_mean_and_variance() -> None:
    values = np.array([0.1, 0.4, 0.35, 0.0, 0.9])
    moments = Moments(len(values), float(values.sum()), float((values**2).sum()))
    assert moments.mean == pytest.approx(values.mean())
    assert moments.variance == pytest.approx(values.var(ddof=1))
    assert Moments(1, 2.0, 4.0).variance is None
    assert Moments(0, 0.0, 0.0).mean is None


def test_success_criteria_default_to_the_documented_values() -> None:
    criteria = SuccessCriteria.from_json({"min_engagement_lift": 0.2})
    assert criteria == SuccessCriteria(0.2, 0.10, 0.05)
    assert SuccessCriteria.from_json(criteria.to_json()) == criteria
