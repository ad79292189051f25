"""Holm-Bonferroni and Benjamini-Hochberg against statsmodels' multipletests."""

from __future__ import annotations

import json

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from tuneloop.experiments.stats.analysis import analyze, parse_request
from tuneloop.experiments.stats.corrections import adjust, benjamini_hochberg, holm_bonferroni

FAMILIES = [
    [0.01, 0.04, 0.03, 0.005],
    [0.5, 0.5, 0.01, 0.2, 0.049, 0.9],
    [0.001],
    list(np.random.default_rng(7).uniform(0, 0.2, 25)),
]


@pytest.mark.parametrize("p_values", FAMILIES)
def test_holm_matches_statsmodels(p_values: list[float]) -> None:
    expected = multipletests(p_values, method="holm")[1]
    assert holm_bonferroni(p_values) == pytest.approx(list(expected), rel=1e-12)


@pytest.mark.parametrize("p_values", FAMILIES)
def test_benjamini_hochberg_matches_statsmodels(p_values: list[float]) -> None:
    expected = multipletests(p_values, method="fdr_bh")[1]
    assert benjamini_hochberg(p_values) == pytest.approx(list(expected), rel=1e-12)


def test_missing_p_values_stay_out_of_the_family() -> None:
    assert adjust([0.01, None, 0.04], "holm-bonferroni") == [0.02, None, 0.04]
    assert adjust([0.01, None], "none") == [None, None]


def test_analyze_adjusts_across_the_treatment_arms() -> None:
    arms = [
        {"name": "control", "n": 5000, "successes": 250},
        {"name": "a", "n": 5000, "successes": 300},
        {"name": "b", "n": 5000, "successes": 262},
        {"name": "c", "n": 5000, "successes": 240},
    ]
    payload = {"metric": "proportion", "method": "fixed", "arms": arms}
    plain = json.loads(analyze(parse_request(json.dumps(payload))).model_dump_json())
    raw = [c["p_value"] for c in plain["comparisons"]]
    assert all(c["adjusted_p_value"] is None for c in plain["comparisons"])
    for name, method in (("holm-bonferroni", "holm"), ("benjamini-hochberg", "fdr_bh")):
        out = json.loads(
            analyze(parse_request(json.dumps({**payload, "correction": name}))).model_dump_json()
        )
        assert out["correction"] == name
        adjusted = [c["adjusted_p_value"] for c in out["comparisons"]]
        assert adjusted == pytest.approx(list(multipletests(raw, method=method)[1]), rel=1e-12)
        assert [c["significant"] for c in out["comparisons"]] == [p <= 0.05 for p in adjusted]
    assert plain["comparisons"][0]["significant"] is True  # p = 0.045 alone, 0.136 adjusted
