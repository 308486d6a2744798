"""Types shared by request schemas: text and JSON that PostgreSQL can store."""

import math
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, StringConstraints


def no_nul(text: str) -> str:
    # PostgreSQL rejects U+0000 in text and JSONB: refuse it here, so it never reaches the DB.
    if "\x00" in text:
        raise ValueError("must not contain NUL (\\u0000) characters")
    return text


def storable_json(value: dict[str, Any]) -> dict[str, Any]:
    """No NUL in any key or string and no NaN/Infinity (JSONB holds neither), at any depth."""
    pending: list[Any] = [value]
    while pending:  # iterative: a deeply nested body must not exhaust the stack
        item = pending.pop()
        if isinstance(item, dict):
            for name, child in item.items():
                no_nul(name)
                pending.append(child)
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            no_nul(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError("must not contain NaN or Infinity")
    return value


Text = Annotated[str, AfterValidator(no_nul)]
Name = Annotated[Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
JsonObject = Annotated[dict[str, Any], AfterValidator(storable_json)]


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a listing: `{items, total, limit, offset}`."""

    items: list[T]
    total: int
    limit: int
    offset: int
