"""Password hashing (argon2 via pwdlib) and JWT encoding/decoding; pure functions, no I/O."""

import uuid
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal

import jwt
from pwdlib import PasswordHash

from backend.errors import Unauthorized

ALGORITHM = "HS256"
TokenType = Literal["access", "refresh"]

_hasher = PasswordHash.recommended()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, hashed: str | None) -> bool:
    """Check a password; with no hash (unknown user) verify against a dummy hash and fail,
    so the response time does not tell whether the user exists."""
    if hashed is None:
        _hasher.verify(password, _dummy_hash())
        return False
    return _hasher.verify(password, hashed)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash(uuid.uuid4().hex)


def new_token_id() -> str:
    return uuid.uuid4().hex


def encode_token(
    *,
    subject: str,
    token_type: TokenType,
    secret: str,
    lifetime: timedelta,
    extra: dict[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Return the signed token and its claims (`sub`, `exp`, `iat`, `jti`, `type`, extras)."""
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": subject,
        "iat": now,
        "exp": now + lifetime,
        "jti": new_token_id(),
        "type": token_type,
        **(extra or {}),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM), claims


# Access tokens verified, by (secret, token): a token's signature and claims never change, so
# one seen before needs only its expiry checked (what pyjwt checks, as pyjwt does). Every
# request carries one; the whole cache is dropped when it is full.
VERIFIED_ACCESS_TOKENS = 10_000
_verified: dict[tuple[str, str], dict[str, Any]] = {}


def decode_token(token: str, *, secret: str, expected_type: TokenType) -> dict[str, Any]:
    """Verify signature, expiry and type with the algorithm pinned; any failure is a 401."""
    known = _verified.get((secret, token)) if expected_type == "access" else None
    if known is not None:
        if known["exp"] <= datetime.now(UTC).timestamp():
            raise Unauthorized("Token has expired")
        return dict(known)
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["sub", "exp", "iat", "jti", "type"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("Token has expired") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthorized("Invalid token") from exc
    if claims["type"] != expected_type:
        raise Unauthorized(f"Expected an {expected_type} token")
    if expected_type == "access":
        if len(_verified) >= VERIFIED_ACCESS_TOKENS:
            _verified.clear()
        _verified[(secret, token)] = dict(claims)
    return claims


def subject_id(claims: dict[str, Any]) -> int:
    """The user id in `sub`; a validly signed token with another subject is still refused."""
    subject = claims["sub"]
    if not (isinstance(subject, str) and subject.isdigit()):
        raise Unauthorized("Invalid token")
    return int(subject)
