"""The permanent holdout's assignment: sticky, near the share, independent of experiments."""

from __future__ import annotations

import numpy as np

from tuneloop.experiments.assignment import bucket
from tuneloop.experiments.holdout import holdout_key, holdout_mask, in_holdout


def test_membership_is_sticky_and_vectorised_alike() -> None:
    units = [f"user-{i}" for i in range(2000)]
    first = [in_holdout("acme", u, 0.1) for u in units]
    assert first == [in_holdout("acme", u, 0.1) for u in units]
    assert list(holdout_mask("acme", units, 0.1)) == first


def test_the_share_is_close_to_the_setting_over_many_units() -> None:
    units = [f"user-{i}" for i in range(100_000)]
    for share in (0.01, 0.05, 0.2):
        observed = float(np.mean(holdout_mask("acme", units, share)))
        # binomial standard error at 100k units is below 0.0013 for these shares: 4 SE
        assert abs(observed - share) < 4 * (share * (1 - share) / len(units)) ** 0.5


def test_zero_share_holds_nobody_and_raising_it_only_adds_units() -> None:
    units = [f"u{i}" for i in range(5000)]
    assert not any(in_holdout("acme", u, 0.0) for u in units)
    small, large = holdout_mask("acme", units, 0.05), holdout_mask("acme", units, 0.1)
    assert np.all(large[small])


def test_tenants_and_experiments_draw_independent_buckets() -> None:
    units = [f"u{i}" for i in range(20_000)]
    acme, other = holdout_mask("acme", units, 0.2), holdout_mask("globex", units, 0.2)
    assert 0.02 < float(np.mean(acme & other)) < 0.06  # ~0.04 if independent
    treated = np.array([bucket("exp-1", u) < 0.5 for u in units])
    assert 0.45 < float(np.mean(treated[acme])) < 0.55  # the experiment's split survives
    assert holdout_key("acme") == "holdout:acme"
