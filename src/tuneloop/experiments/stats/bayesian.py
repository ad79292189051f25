"""The Bayesian engine: a Gaussian posterior on the delta-method effect, as in gbstats.

Follows gbstats' ``EffectBayesianABTest`` (``bayesian/tests.py``, growthbook/growthbook; the
same code ships in gbstats 0.8.0): the data give the effect estimate d and its variance s²
(absolute, or relative over |control mean|, ratio and CUPED estimates alike); the prior
N(mu0, v0) is set on the relative scale and rescaled for an absolute effect
(mu0·|m_a|, v0·m_a²). With a proper prior the posterior is

    precision = 1/s² + 1/v0        mean = (d/s² + mu0/v0) / precision

and with the improper flat prior it is N(d, s²). Then, for the posterior N(mu, sigma²):

    chance to win   P(effect > 0)  (P(effect < 0) for an ``inverse``, lower-is-better metric)
    credible int.   mu ± z(1 - alpha/2)·sigma
    risk            control: E[max(effect, 0)], treatment: E[max(-effect, 0)]
                    (what choosing that arm loses when it is the worse one; swapped if inverse)

gbstats computes the risks from truncated-normal means; the closed forms used here
(mu·Phi(mu/sigma) + sigma·phi(mu/sigma), sigma·phi(mu/sigma) - mu·Phi(-mu/sigma)) are
the same numbers and are checked against scipy's ``truncnorm`` in the tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tuneloop.experiments.stats.errors import StatsError
from tuneloop.experiments.stats.lazy import scipy_stats

DEFAULT_PRIOR_VARIANCE = 0.09  # GrowthBook's default: a relative effect's sd of 0.3


@dataclass(frozen=True)
class Prior:
    """A Gaussian prior on the relative effect; ``proper=False`` is the flat prior."""

    mean: float = 0.0
    variance: float = DEFAULT_PRIOR_VARIANCE
    proper: bool = False


@dataclass(frozen=True)
class BayesianInference:
    """The posterior of treatment minus control; numbers are None when ``error`` is set."""

    estimate: float | None
    std_error: float | None
    ci: tuple[float, float] | None
    chance_to_win: float | None
    risk_control: float | None
    risk_treatment: float | None
    error: StatsError | None = None

    @classmethod
    def failed(cls, error: StatsError) -> BayesianInference:
        return cls(None, None, None, None, None, None, error)

    @property
    def significant(self) -> bool:
        """The credible interval excludes zero."""
        return self.ci is not None and (self.ci[0] > 0 or self.ci[1] < 0)


def risks(mu: float, sigma: float) -> tuple[float, float]:
    """(E[max(effect, 0)], E[max(-effect, 0)]) for effect ~ N(mu, sigma²)."""
    z = mu / sigma
    density = float(scipy_stats.norm.pdf(z))
    above = mu * float(scipy_stats.norm.cdf(z)) + sigma * density
    below = sigma * density - mu * float(scipy_stats.norm.sf(z))
    return max(above, 0.0), max(below, 0.0)


def bayesian_test(
    estimate: float,
    std_error: float,
    *,
    control_mean: float,
    relative: bool,
    prior: Prior = Prior(),
    inverse: bool = False,
    alpha: float = 0.05,
) -> BayesianInference:
    """Posterior of the effect given its delta-method estimate and the relative-scale prior."""
    try:  # absurd inputs under- or overflow: reported, never raised
        return _bayesian_test(
            estimate,
            std_error,
            control_mean=control_mean,
            relative=relative,
            prior=prior,
            inverse=inverse,
            alpha=alpha,
        )
    except (ZeroDivisionError, OverflowError):
        return BayesianInference.failed(StatsError.NOT_FINITE)


def _bayesian_test(
    estimate: float,
    std_error: float,
    *,
    control_mean: float,
    relative: bool,
    prior: Prior,
    inverse: bool,
    alpha: float,
) -> BayesianInference:
    if not std_error > 0:
        return BayesianInference.failed(StatsError.ZERO_VARIANCE)
    prior_mean, prior_variance = prior.mean, prior.variance
    if not relative:
        if prior.proper and control_mean == 0:
            return BayesianInference.failed(StatsError.BASELINE_ZERO)
        prior_mean, prior_variance = (
            prior.mean * abs(control_mean),
            prior.variance * control_mean**2,
        )
    data_precision = 1 / std_error**2
    if prior.proper:
        precision = data_precision + 1 / prior_variance
        mu = (estimate * data_precision + prior_mean / prior_variance) / precision
    else:
        precision, mu = data_precision, estimate
    sigma = math.sqrt(1 / precision)
    if not (math.isfinite(mu) and math.isfinite(sigma) and sigma > 0):
        return BayesianInference.failed(StatsError.NOT_FINITE)
    win = float(scipy_stats.norm.sf(0, mu, sigma))
    z = float(scipy_stats.norm.ppf(1 - alpha / 2))
    risk_control, risk_treatment = risks(mu, sigma)
    if inverse:
        win = 1 - win
        risk_control, risk_treatment = risk_treatment, risk_control
    return BayesianInference(
        estimate=mu,
        std_error=sigma,
        ci=(mu - z * sigma, mu + z * sigma),
        chance_to_win=win,
        risk_control=risk_control,
        risk_treatment=risk_treatment,
    )
