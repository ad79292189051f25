"""A post's source model version: given outright, or read from a MODEL@VERSION model_id."""

from __future__ import annotations

from tuneloop.posts.schema import PostIn

BASE = {"id": "p1", "hook": "H", "body": "B", "ts": "2026-11-01T00:00:00Z"}


def test_a_model_label_gives_the_source_model_and_version() -> None:
    post = PostIn.model_validate(BASE | {"model_id": "tuneloop-acme@3"})
    assert (post.source_model, post.source_version) == ("tuneloop-acme", "3")


def test_explicit_source_wins_and_unknown_stays_none() -> None:
    post = PostIn.model_validate(
        BASE | {"model_id": "x@1", "source_model": "m", "source_version": "2"}
    )
    assert (post.source_model, post.source_version) == ("m", "2")
    plain = PostIn.model_validate(BASE | {"model_id": "gpt-4o-mini", "source_version": ""})
    assert (plain.source_model, plain.source_version, plain.generation_id) == (None, None, None)


def test_a_version_without_a_model_says_nothing() -> None:
    post = PostIn.model_validate(BASE | {"source_version": "4"})
    assert post.source_version is None
