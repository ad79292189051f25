"""Events that name a generation inherit its unit, model, experiment and arm.

A client of the proxy knows the generation id it was handed (``X-Tuneloop-Generation-Id``)
and nothing else about the call; its engagement outcome carries that id only. The
generation it names is found in the same batch or in the store (one query per batch);
what the outcome left out is copied from it, so the statistics count it in the right arm.
An id that names no generation of the tenant is refused, as is one that contradicts it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine

from tuneloop.domain.experiments import EventKind
from tuneloop.events.schema import EventIn
from tuneloop.store.events import GenerationLinks, generations_by_id

Links = dict[str, GenerationLinks]


def _str(raw: dict[str, Any], name: str) -> str | None:
    value = raw.get(name)
    return value if isinstance(value, str) else None


def linked_generations(engine: Engine, tenant_id: str, events: Sequence[Any]) -> Links:
    """The generations that the batch's exposures and outcomes name, read once."""
    wanted: set[str] = set()
    local: Links = {}
    for raw in events:
        if not isinstance(raw, dict) or (generation_id := _str(raw, "generation_id")) is None:
            continue
        if raw.get("kind") != EventKind.GENERATION.value:
            wanted.add(generation_id)
        elif (unit := _str(raw, "unit_id")) is not None:
            local[generation_id] = GenerationLinks(
                unit, _str(raw, "model_id"), _str(raw, "experiment_key"), _str(raw, "arm")
            )
    found = {key: link for key, link in local.items() if key in wanted}
    missing = wanted - found.keys()
    return {**generations_by_id(engine, tenant_id, missing), **found} if missing else found


def inherit(event: EventIn, links: Links) -> EventIn | tuple[str, str]:
    """``event`` completed from the generation it names, or the field and reason to refuse it."""
    generation_id = event.generation_id
    if generation_id is None or event.kind is EventKind.GENERATION:
        return event
    link = links.get(generation_id)
    if link is None:
        return "generation_id", f"no generation {generation_id!r} was recorded for this tenant"
    if event.unit_id is not None and event.unit_id != link.unit_id:
        return "unit_id", f"generation {generation_id!r} was for unit {link.unit_id!r}"
    if event.experiment_key is not None and (event.experiment_key, event.arm) != (
        link.experiment_key,
        link.arm,
    ):
        return "experiment_key", f"generation {generation_id!r} was not served by that arm"
    update: dict[str, Any] = {"unit_id": link.unit_id}
    if event.model_id is None:
        update["model_id"] = link.model_id
    if link.experiment_key is not None:
        update |= {"experiment_key": link.experiment_key, "arm": link.arm}
    return event.model_copy(update=update)
