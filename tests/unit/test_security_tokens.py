"""Access tokens: a token verified once is verified again from memory, with its expiry still
checked on each use (backend/security.py)."""

from datetime import timedelta

import pytest

from backend import security
from backend.errors import Unauthorized

SECRET = "unit-secret-" + "x" * 32


def access(lifetime: timedelta) -> str:
    token, _ = security.encode_token(
        subject="7",
        token_type="access",
        secret=SECRET,
        lifetime=lifetime,
    )
    return token


def test_a_token_seen_before_gives_the_same_claims() -> None:
    token = access(timedelta(minutes=5))
    first = security.decode_token(token, secret=SECRET, expected_type="access")
    again = security.decode_token(token, secret=SECRET, expected_type="access")
    assert again == first
    assert security.subject_id(again) == 7


def test_a_token_seen_before_is_refused_once_expired(monkeypatch: pytest.MonkeyPatch) -> None:
    token = access(timedelta(minutes=5))
    claims = security.decode_token(token, secret=SECRET, expected_type="access")
    monkeypatch.setitem(security._verified, (SECRET, token), {**claims, "exp": claims["exp"] - 600})
    with pytest.raises(Unauthorized, match="expired"):
        security.decode_token(token, secret=SECRET, expected_type="access")


def test_a_token_seen_before_with_another_secret_or_type_is_verified_anew() -> None:
    token = access(timedelta(minutes=5))
    security.decode_token(token, secret=SECRET, expected_type="access")
    with pytest.raises(Unauthorized, match="Invalid token"):
        security.decode_token(token, secret="another-" + "y" * 32, expected_type="access")
    with pytest.raises(Unauthorized, match="Expected a"):
        security.decode_token(token, secret=SECRET, expected_type="refresh")


def test_an_expired_token_is_never_kept() -> None:
    token = access(timedelta(seconds=-1))
    with pytest.raises(Unauthorized, match="expired"):
        security.decode_token(token, secret=SECRET, expected_type="access")
    assert (SECRET, token) not in security._verified
