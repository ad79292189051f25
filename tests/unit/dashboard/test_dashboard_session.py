"""The session cookie's token: round trip, expiry, forgery, and CSRF comparison."""

from __future__ import annotations

from tuneloop.api.principals import Principal
from tuneloop.dashboard.session import decode_session, encode_session, new_session, tokens_match
from tuneloop.store.auth_models import Role

SECRET = "a" * 40
WHO = Principal("acme", Role.OPERATOR, "key-1", "api_key")


def test_round_trip_keeps_the_principal_and_csrf() -> None:
    session = new_session(WHO, ttl_seconds=600)
    decoded = decode_session(encode_session(session, SECRET), SECRET)
    assert decoded == session


def test_expired_forged_or_garbled_tokens_are_no_session() -> None:
    assert (
        decode_session(encode_session(new_session(WHO, ttl_seconds=60, now=0), SECRET), SECRET)
        is None
    )
    token = encode_session(new_session(WHO, ttl_seconds=600), SECRET)
    assert decode_session(token, "b" * 40) is None
    assert decode_session(token[:-3] + "xyz", SECRET) is None
    assert decode_session("", SECRET) is None and decode_session(None, SECRET) is None


def test_csrf_tokens_match_only_when_equal_and_present() -> None:
    assert tokens_match("abc", "abc")
    assert not tokens_match("abc", "abd")
    assert (
        not tokens_match("abc", None) and not tokens_match(None, None) and not tokens_match("", "")
    )
