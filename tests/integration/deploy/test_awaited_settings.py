"""Settings the deploy files set before their branch lands (see settings_names.py)."""

from __future__ import annotations

import pytest
from settings_names import AWAITED_SETTINGS, is_setting


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=f"awaited: {why}"))
        for name, why in AWAITED_SETTINGS.items()
    ],
)
def test_awaited_settings_exist(name: str) -> None:
    assert is_setting(name)


def test_the_settings_check_knows_real_and_fake_names() -> None:
    assert is_setting("DATABASE_URL") and is_setting("TUNELOOP_API__WORKERS")
    assert is_setting("TUNELOOP_WORKSPACE")
    assert not is_setting("TUNELOOP_API__WORKRES") and not is_setting("DATABASE_URI")
    assert not is_setting("TUNELOOP_API__PORT__X")
