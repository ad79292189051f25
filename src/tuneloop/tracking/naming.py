"""Names tuneloop gives things in MLflow: per-tenant experiments and registered models.

Tenants and pipeline run ids become parts of names and of MLflow search filters, so they
are limited to a safe alphabet (letters, digits, ``_ . -``) instead of being escaped.
"""

from __future__ import annotations

import re

from tuneloop.errors import InvalidInputError

_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")

ADAPTER_ARTIFACT_PATH = "adapter"  # where register_candidate logs the adapter in the run


def checked(kind: str, value: str) -> str:
    if not _SAFE.fullmatch(value):
        raise InvalidInputError(
            f"{kind} {value!r} must be 1-128 letters, digits, '_', '.' or '-' "
            "and start with a letter or digit"
        )
    return value


def experiment_name(prefix: str, tenant: str) -> str:
    """One MLflow experiment per tenant: ``{prefix}-{tenant}``."""
    return f"{checked('experiment prefix', prefix)}-{checked('tenant', tenant)}"


def model_name(prefix: str, tenant: str) -> str:
    """One registered model per tenant, named like its experiment."""
    return experiment_name(prefix, tenant)


def tag_filter(key: str, value: str) -> str:
    """An MLflow search clause ``tags.`key` = 'value'`` (value already ``checked``)."""
    return f"tags.`{key}` = '{value}'"
