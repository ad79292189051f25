"""The model registry: one registered model per tenant, aliases ``challenger``/``champion``.

A candidate's version is found again by its pipeline-run-id tag, so registering is
idempotent. ``promote`` records the champion it replaces in a version tag
(``tuneloop.previous_champion``) before moving the alias, so a retried promotion returns the
same previous champion and a rollback is "promote the previous one again".
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from tuneloop.errors import InvalidInputError, NotFoundError
from tuneloop.tracking.connection import Connection
from tuneloop.tracking.info import (
    CHALLENGER,
    CHAMPION,
    TAG_DATASET_HASH,
    TAG_PIPELINE_RUN_ID,
    TAG_PREVIOUS_CHAMPION,
    TAG_TENANT,
    ModelVersionInfo,
    Promotion,
    from_millis,
)
from tuneloop.tracking.naming import ADAPTER_ARTIFACT_PATH, checked, model_name, tag_filter
from tuneloop.tracking.runs import run_tags
from tuneloop.tracking.translate import error_code

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion


def register_candidate(
    conn: Connection,
    tenant: str,
    run_id: str,
    adapter_dir: Path,
    *,
    dataset_hash: str,
    tags: Mapping[str, str],
) -> ModelVersionInfo:
    """Log the adapter in the run, register it as a version, point ``challenger`` at it."""
    name = model_name(conn.prefix, tenant)
    pipeline_run_id = _pipeline_run_of(conn, run_id, tenant)
    version = conn.call("find version", lambda: _find_version(conn, name, pipeline_run_id))
    if version is None:
        _check_adapter_dir(adapter_dir)
        conn.call(
            "log adapter",
            lambda: conn.client.log_artifacts(run_id, str(adapter_dir), ADAPTER_ARTIFACT_PATH),
        )
        all_tags = {
            **tags,
            TAG_PIPELINE_RUN_ID: pipeline_run_id,
            TAG_DATASET_HASH: dataset_hash,
            TAG_TENANT: tenant,
        }
        version = conn.call(
            "register version", lambda: _find_or_create(conn, name, run_id, all_tags)
        )
    number = int(version.version)
    conn.call(
        "set challenger",
        lambda: conn.client.set_registered_model_alias(name, CHALLENGER, str(number)),
    )
    return get_version(conn, tenant, number)


def _pipeline_run_of(conn: Connection, run_id: str, tenant: str) -> str:
    tags = run_tags(conn, run_id)
    if tags.get(TAG_TENANT) != tenant or TAG_PIPELINE_RUN_ID not in tags:
        raise InvalidInputError(f"run {run_id} was not started by Tracker.start_run for {tenant}")
    return tags[TAG_PIPELINE_RUN_ID]


def _check_adapter_dir(adapter_dir: Path) -> None:
    if not adapter_dir.is_dir() or not any(adapter_dir.iterdir()):
        raise InvalidInputError(f"adapter directory {adapter_dir} is missing or empty")


def _find_version(conn: Connection, name: str, pipeline_run_id: str) -> ModelVersion | None:
    found = conn.client.search_model_versions(
        f"name = '{name}' and {tag_filter(TAG_PIPELINE_RUN_ID, pipeline_run_id)}"
    )
    return min(found, key=lambda v: int(v.version)) if found else None


def _find_or_create(conn: Connection, name: str, run_id: str, tags: dict[str, str]) -> ModelVersion:
    """One guarded unit: a retry after a lost response finds the version it created."""
    found = _find_version(conn, name, tags[TAG_PIPELINE_RUN_ID])
    if found is not None:
        return found
    _ensure_registered_model(conn, name, tags[TAG_TENANT])
    source = f"runs:/{run_id}/{ADAPTER_ARTIFACT_PATH}"
    return conn.client.create_model_version(name, source, run_id=run_id, tags=tags)


def _ensure_registered_model(conn: Connection, name: str, tenant: str) -> None:
    try:
        conn.client.get_registered_model(name)
    except Exception as exc:
        if error_code(exc) != "RESOURCE_DOES_NOT_EXIST":
            raise
        try:
            conn.client.create_registered_model(name, tags={TAG_TENANT: tenant})
        except Exception as again:  # created meanwhile by another process
            if error_code(again) != "RESOURCE_ALREADY_EXISTS":
                raise


def promote(conn: Connection, tenant: str, version: int) -> Promotion:
    """Point ``champion`` at ``version``; returns it with the champion it replaced."""
    name = model_name(conn.prefix, tenant)
    target = get_version(conn, tenant, version)
    current = _aliases(conn, name).get(CHAMPION)
    client = conn.client
    if current == version:  # promoted already (a retry): report what it replaced then
        recorded = target.tags.get(TAG_PREVIOUS_CHAMPION)
        previous = int(recorded) if recorded else None
    else:
        previous = current
        if previous is not None:
            conn.call(
                "record previous champion",
                lambda: client.set_model_version_tag(
                    name, str(version), TAG_PREVIOUS_CHAMPION, str(previous)
                ),
            )
        elif TAG_PREVIOUS_CHAMPION in target.tags:
            conn.call(
                "clear previous champion",
                lambda: client.delete_model_version_tag(name, str(version), TAG_PREVIOUS_CHAMPION),
            )
        conn.call(
            "set champion", lambda: client.set_registered_model_alias(name, CHAMPION, str(version))
        )
    return Promotion(
        champion=get_version(conn, tenant, version),
        previous=get_version(conn, tenant, previous) if previous is not None else None,
    )


def clear_alias(conn: Connection, tenant: str, alias: str, version: int) -> bool:
    """Remove ``alias`` if it still points at ``version`` (a retry finds it gone); True if
    it was removed."""
    name = model_name(conn.prefix, tenant)
    if _aliases(conn, name).get(checked("alias", alias)) != version:
        return False
    conn.call(f"clear {alias}", lambda: conn.client.delete_registered_model_alias(name, alias))
    return True


def get_version(conn: Connection, tenant: str, version: int) -> ModelVersionInfo:
    name = model_name(conn.prefix, tenant)
    found = conn.call("get version", lambda: conn.client.get_model_version(name, str(version)))
    return _info(found, _aliases(conn, name))


def get_alias(conn: Connection, tenant: str, alias: str) -> ModelVersionInfo | None:
    version = _aliases(conn, model_name(conn.prefix, tenant)).get(checked("alias", alias))
    return get_version(conn, tenant, version) if version is not None else None


def list_versions(conn: Connection, tenant: str) -> list[ModelVersionInfo]:
    name = model_name(conn.prefix, tenant)
    versions: list[ModelVersion] = []
    token: str | None = None
    while True:
        search = partial(conn.client.search_model_versions, f"name = '{name}'", page_token=token)
        page = conn.call("list versions", search)
        versions.extend(page)
        token = page.token
        if not token:
            break
    aliases = _aliases(conn, name)
    return sorted((_info(v, aliases) for v in versions), key=lambda info: info.version)


def download_adapter(conn: Connection, tenant: str, version: int, dst: Path) -> Path:
    """Download a version's adapter files under ``dst``; returns the folder holding them."""
    info = get_version(conn, tenant, version)
    dst.mkdir(parents=True, exist_ok=True)
    if info.source.startswith("runs:/"):
        run_id, _, path = info.source.removeprefix("runs:/").partition("/")
        local = conn.call(
            "download adapter", lambda: conn.client.download_artifacts(run_id, path, str(dst))
        )
    else:  # registered by someone else, from any artifact URI
        from mlflow.artifacts import download_artifacts

        uri = conn.tracking_uri
        local = conn.call(
            "download adapter",
            lambda: download_artifacts(
                artifact_uri=info.source, dst_path=str(dst), tracking_uri=uri
            ),
        )
    return Path(local)


def _aliases(conn: Connection, name: str) -> dict[str, int]:
    """alias → version of a registered model; empty if the model does not exist yet."""
    try:
        model = conn.call("get model", lambda: conn.client.get_registered_model(name))
    except NotFoundError:
        return {}
    return {alias: int(version) for alias, version in model.aliases.items()}


def _info(version: ModelVersion, aliases: dict[str, int]) -> ModelVersionInfo:
    number = int(version.version)
    return ModelVersionInfo(
        name=version.name,
        version=number,
        source=version.source or "",
        run_id=version.run_id or None,
        status=str(version.status),
        created_at=from_millis(version.creation_timestamp),
        tags=dict(version.tags),
        aliases=tuple(sorted(a for a, v in aliases.items() if v == number)),
    )
