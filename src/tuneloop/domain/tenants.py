"""Tenants: every row belongs to one; the tenant acted for when a command or request names none."""

from __future__ import annotations

DEFAULT_TENANT = "default"
