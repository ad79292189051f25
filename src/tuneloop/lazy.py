"""Modules imported on first use: stand-ins for imports too slow to pay at every start.

SciPy (``experiments/stats/lazy.py``) and the run use cases the ``tuneloop runs`` commands
call (``cli/runs.py``) are named at module level as before; the import happens on the first
attribute access, so ``tuneloop runs --help`` does not load them.
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
