"""SciPy, imported on first use rather than with the statistics modules.

``import scipy.stats`` takes ~0.6 s, which every ``tuneloop`` command paid at start-up
(``tuneloop --help`` took 2.1 s) because the CLI imports the experiment service. The
modules here name ``scipy_stats`` / ``optimize`` as before; the import happens when a
test statistic is first computed.
"""

from __future__ import annotations

from typing import Any

from tuneloop.lazy import LazyModule

scipy_stats: Any = LazyModule("scipy.stats")
optimize: Any = LazyModule("scipy.optimize")
