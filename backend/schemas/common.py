"""Types shared by request schemas: text and JSON that PostgreSQL can store."""

import math
import re
from datetime import datetime
from typing import Annotated, Any, ClassVar, Generic, TypeVar

from annotated_types import Ge, Le
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from backend.triggers.specs import as_utc


def whole_number(value: Any) -> Any:
    # JSON Schema counts 5.0 as an integer; strict validation alone would refuse it.
    return int(value) if isinstance(value, float) and value.is_integer() else value


# Last in an Annotated[int, ...]: constraints before it still reach the JSON schema.
WHOLE = BeforeValidator(whole_number)
# Ids are PostgreSQL `integer`s: a larger number names no row, and asyncpg refuses to send it.
INT32_MAX = 2**31 - 1
Id = Annotated[int, Ge(1), Le(INT32_MAX), WHOLE]
# Offsets past any possible row count; also keeps them within what Redis LRANGE accepts.
Offset = Annotated[int, Ge(0), Le(INT32_MAX)]

# Deeper JSON than any task needs; refused before it can exhaust a recursive encoder.
MAX_JSON_DEPTH = 32


def no_nul(text: str) -> str:
    # PostgreSQL rejects U+0000 in text and JSONB: refuse it here, so it never reaches the DB.
    if "\x00" in text:
        raise ValueError("must not contain NUL (\\u0000) characters")
    return text


# ECMAScript's `\s` (what a JSON Schema `pattern` means by it), spelled out so that Python
# checks exactly the same characters.
SPACE = r"\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_SPACE = re.compile(f"[{SPACE}]")


def trimmed(text: str) -> str:
    # Refused rather than stripped, so that what the schema says is what is accepted.
    if _SPACE.fullmatch(text[:1]) or _SPACE.fullmatch(text[-1:]):
        raise ValueError("must not start or end with whitespace")
    return text


def storable_json(value: dict[str, Any]) -> dict[str, Any]:
    """No NUL in any key or string, no NaN/Infinity (JSONB holds neither), and at most
    MAX_JSON_DEPTH levels of nesting."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:  # iterative: a deeply nested body must not exhaust the stack
        item, depth = pending.pop()
        if isinstance(item, dict | list) and depth > MAX_JSON_DEPTH:
            raise ValueError(f"must not nest objects or arrays over {MAX_JSON_DEPTH} levels deep")
        if isinstance(item, dict):
            for name, child in item.items():
                no_nul(name)
                pending.append((child, depth + 1))
        elif isinstance(item, list):
            pending.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            no_nul(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError("must not contain NaN or Infinity")
    return value


# The patterns only document the rules for the OpenAPI schema; the validators enforce them
# with clearer messages.
NO_NUL = r"^[^\u0000]*$"
TRIMMED_NO_NUL = rf"^[^{SPACE}\u0000]([^\u0000]*[^{SPACE}\u0000])?$"
Text = Annotated[str, AfterValidator(no_nul), Field(json_schema_extra={"pattern": NO_NUL})]
Name = Annotated[
    str,
    AfterValidator(no_nul),
    AfterValidator(trimmed),
    Field(min_length=1, max_length=200, json_schema_extra={"pattern": TRIMMED_NO_NUL}),
]
JsonObject = Annotated[dict[str, Any], AfterValidator(storable_json)]


def iso_datetime(value: Any) -> Any:
    # ISO 8601 text only: pydantic would also take "0.5" as seconds since 1970.
    return datetime.fromisoformat(value) if isinstance(value, str) else value


# A time in ISO 8601; without an offset it is taken as UTC.
UtcDatetime = Annotated[datetime, BeforeValidator(iso_datetime), AfterValidator(as_utc)]


class RequestBody(BaseModel):
    """Base of request bodies: JSON types as the schema says (no `0` for `false`, no `"5"`
    for `5`), and no unknown fields."""

    model_config = ConfigDict(strict=True, extra="forbid")


def _drop_null_branches(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """The schema shows a not-nullable PATCH field as plain `X`, not `X | null`."""
    nullable: tuple[str, ...] = getattr(model, "NULLABLE", ())
    for name, field in schema["properties"].items():
        if name in nullable or "anyOf" not in field:
            continue
        branches = [branch for branch in field.pop("anyOf") if branch != {"type": "null"}]
        (branch,) = branches
        field.update(branch)


class UpdateBody(RequestBody):
    """Base of PATCH bodies: every field is optional (`X | None = None`, so omitted means
    unchanged), but only those in NULLABLE may be sent as an explicit null."""

    NULLABLE: ClassVar[tuple[str, ...]] = ()
    model_config = ConfigDict(json_schema_extra=_drop_null_branches)

    @field_validator("*")
    @classmethod
    def _refuse_null(cls, value: Any, info: ValidationInfo) -> Any:
        # Runs only for the fields sent, so omission stays allowed.
        if value is None and info.field_name not in cls.NULLABLE:
            raise ValueError("may not be null")
        return value


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a listing: `{items, total, limit, offset}`."""

    items: list[T]
    total: int
    limit: int
    offset: int
