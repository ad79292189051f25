"""Environment names the deploy files set, checked against tuneloop's real settings."""

from __future__ import annotations

from pydantic import BaseModel

from tuneloop.config import STANDARD_NAMES, Settings

# Set by the deploy files for settings other branches are adding; the lead removes an entry
# when its setting lands (test_awaited_settings_exist then passes and flags it).
AWAITED_SETTINGS: dict[str, str] = {}
# Read by tuneloop itself outside Settings' fields.
PROCESS_NAMES = {"TUNELOOP_CONFIG", "PROMETHEUS_MULTIPROC_DIR"}


def is_setting(name: str) -> bool:
    """Whether ``name`` is a standard name or a ``TUNELOOP_SECTION__KEY`` of Settings."""
    if name in STANDARD_NAMES or name in PROCESS_NAMES:
        return True
    if not name.startswith("TUNELOOP_"):
        return False
    model: type[BaseModel] = Settings
    parts = name.removeprefix("TUNELOOP_").lower().split("__")
    for index, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        if index < len(parts) - 1:
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return False
            model = annotation
    return True


def unknown_names(names: set[str]) -> list[str]:
    return sorted(name for name in names if not is_setting(name) and name not in AWAITED_SETTINGS)
