"""SciPy, imported on first use rather than with the statistics modules.

``import scipy.stats`` takes ~0.6 s, which every ``tuneloop`` command paid at start-up
(``tuneloop --help`` took 2.1 s) because the CLI imports the experiment service. The
modules here name ``scipy_stats`` / ``optimize`` as before; the import happens when a
test statistic is first computed. Type checkers see the real modules.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands in for a module; imports it on the first attribute access."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attribute)


scipy_stats: Any = LazyModule("scipy.stats")
optimize: Any = LazyModule("scipy.optimize")
