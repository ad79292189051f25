"""Statistics for A/B tests: pure functions over per-arm sufficient statistics.

    moments      per-arm mean and variance from (n, sum, sum_squares) or (n, successes)
    frequentist  Welch t-tests of absolute and relative (delta-method) differences
    sequential   always-valid confidence sequences, so hourly peeking stays valid
    srm          sample-ratio-mismatch chi-square check against planned weights
    power        power, minimum detectable effect, sample size and time to a decision
    effect_size  Cohen's d / h and their small / medium / large label
    analysis     the public JSON-in / JSON-out shape (pydantic) and ``analyze``
    errors       the error codes results carry instead of raising

Formulas follow GrowthBook's ``gbstats`` (see docs/statistics.md). Nothing here raises
for degenerate data: results carry a :class:`StatsError` code instead.
"""

from tuneloop.experiments.stats.errors import StatsError

__all__ = ["StatsError"]
