"""The domain exception tree: every error a service raises, with its status and code.

Services raise these; the API maps them to the one JSON error shape (backend/api/errors.py).
Nothing here knows HTTP beyond the status number each error stands for.
"""

from typing import Any, Literal

import aiormq.exceptions
import redis.exceptions
import sqlalchemy.exc


class TaskhubError(Exception):
    status = 500
    code = "internal_error"
    message = "Internal server error"

    def __init__(
        self,
        message: str | None = None,
        *,
        fields: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.fields = fields or []
        self.headers = headers


class NotFound(TaskhubError):
    status, code, message = 404, "not_found", "Not found"


class Conflict(TaskhubError):
    status, code, message = 409, "conflict", "Conflict"


class Unauthorized(TaskhubError):
    status, code, message = 401, "unauthorized", "Could not validate credentials"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(TaskhubError):
    status, code, message = 403, "forbidden", "Not enough privileges"


FieldSource = Literal["input", "stored"]


class InvalidInput(TaskhubError):
    """Field errors, each `loc` relative to what the service was given (`["schedule_config",
    "minute"]`). `source` says whose fields they are: the caller's input (the API locates them
    in the request body) or the stored config's (located as they are)."""

    status, code, message = 422, "validation_error", "Invalid input"

    def __init__(
        self,
        message: str | None = None,
        *,
        fields: list[dict[str, Any]] | None = None,
        source: FieldSource = "input",
    ) -> None:
        super().__init__(message, fields=fields)
        self.source = source


class TooManyRequests(TaskhubError):
    status, code, message = 429, "too_many_requests", "Too many requests"

    def __init__(self, message: str | None = None, *, retry_after: int) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class StoreUnavailable(TaskhubError):
    status, code, message = 503, "service_unavailable", "A backing service is unavailable"


# Connection failures of Redis, the database or the broker: a 503 naming which, not a 500.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    aiormq.exceptions.AMQPConnectionError,
    ConnectionError,
    TimeoutError,
)


def unavailable(exc: Exception) -> StoreUnavailable:
    """The StoreUnavailable for a connection error of Redis, the database or the broker."""
    return StoreUnavailable(f"{_store_name(exc)} is unavailable")


def _store_name(exc: Exception) -> str:
    if isinstance(exc, redis.exceptions.RedisError):
        return "Redis"
    if isinstance(exc, sqlalchemy.exc.SQLAlchemyError):
        return "The database"
    return "The message broker"
