"""Bearer tokens the API must refuse with 401 (RFC 8725: pinned algorithm, checked type)."""

import base64
import json
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from backend.config import get_settings
from backend.security import encode_token
from backend.services import users

ME = "/api/v1/users/me"


def _secret() -> str:
    return get_settings().jwt_secret.get_secret_value()


def _b64(part: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()


def _claims(sub: str, **extra: object) -> dict:
    now = datetime.now(UTC)
    claims = {"sub": sub, "iat": now, "exp": now + timedelta(minutes=5), "jti": "j", **extra}
    return {"type": "access", **claims}


def _mint(sub: str, lifetime: timedelta = timedelta(minutes=5), **kind: str) -> str:
    token_type = kind.get("token_type", "access")
    token, _ = encode_token(
        subject=sub,
        token_type=token_type,  # type: ignore[arg-type]
        secret=_secret(),
        lifetime=lifetime,
        extra={"family": "f"},
    )
    return token


def alg_none(sub: str) -> str:
    claims = _claims(sub)
    payload = {
        **claims,
        "iat": int(claims["iat"].timestamp()),
        "exp": int(claims["exp"].timestamp()),
    }
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(payload)}."


def tampered_signature(sub: str) -> str:
    token = _mint(sub)
    head, payload, signature = token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return f"{head}.{payload}.{flipped}"


def tampered_payload(sub: str) -> str:
    head, _, signature = _mint(sub).split(".")
    forged = _claims(sub, is_superuser=True)
    forged = {**forged, "iat": int(forged["iat"].timestamp()), "exp": 2_000_000_000}
    return f"{head}.{_b64(forged)}.{signature}"


def other_secret(sub: str) -> str:
    return jwt.encode(_claims(sub), "another-secret-" + "y" * 32, algorithm="HS256")


def other_algorithm(sub: str) -> str:
    with warnings.catch_warnings():  # PyJWT warns that the key is short for HS512
        warnings.simplefilter("ignore")
        return jwt.encode(_claims(sub), _secret(), algorithm="HS512")


def expired(sub: str) -> str:
    return _mint(sub, lifetime=timedelta(seconds=-1))


def refresh_as_bearer(sub: str) -> str:
    return _mint(sub, token_type="refresh")


def missing_jti(sub: str) -> str:
    claims = _claims(sub)
    del claims["jti"]
    return jwt.encode(claims, _secret(), algorithm="HS256")


def unknown_user(_: str) -> str:
    return _mint("999999999")


def non_numeric_subject(_: str) -> str:
    return _mint("admin")


BAD_TOKENS: list[Callable[[str], str]] = [
    alg_none,
    tampered_signature,
    tampered_payload,
    other_secret,
    other_algorithm,
    expired,
    refresh_as_bearer,
    missing_jti,
    unknown_user,
    non_numeric_subject,
]


@pytest.fixture
async def admin_sub(session: AsyncSession) -> str:
    admin = await users.get_by_email(session, email="admin@example.com")
    assert admin is not None
    return str(admin.id)


async def test_a_good_token_is_accepted(client: httpx.AsyncClient, admin_sub: str) -> None:
    response = await client.get(ME, headers={"Authorization": f"Bearer {_mint(admin_sub)}"})
    assert response.status_code == 200


@pytest.mark.parametrize("make_token", BAD_TOKENS, ids=lambda f: f.__name__)
async def test_bad_token_is_401_with_bearer_challenge(
    client: httpx.AsyncClient, admin_sub: str, make_token: Callable[[str], str]
) -> None:
    response = await client.get(ME, headers={"Authorization": f"Bearer {make_token(admin_sub)}"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"


async def test_no_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get(ME)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
