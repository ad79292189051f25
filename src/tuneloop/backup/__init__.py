"""Backups: the app database, the MLflow store and the artifacts in one checked archive."""

from tuneloop.backup.service import BackupResult, RestoreResult, backup, restore

__all__ = ["BackupResult", "RestoreResult", "backup", "restore"]
