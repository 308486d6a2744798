"""A run's result and error made storable: JSONB refuses NUL, NaN and Infinity, and a
result or error may be far larger than a record should hold."""

import json
import math
from typing import Any


def describe_error(exc: BaseException, *, max_chars: int) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    text = _storable_text(text)
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def cap_result(value: Any, *, max_bytes: int) -> Any:
    """A JSON value for the `result` column; an oversized one is replaced by a marked preview.

    PostgreSQL refuses NUL characters and NaN/Infinity in JSONB: they are replaced here, so a
    task's odd return value still gives its run a true record instead of a refused write.
    """
    encoded = json.dumps(value, default=str)
    if any(token in encoded for token in _REFUSED_TOKENS):  # rare: walk the value only then
        encoded = json.dumps(_storable(json.loads(encoded)))
    if len(encoded.encode()) <= max_bytes:
        return json.loads(encoded)
    return {"truncated": True, "size_bytes": len(encoded.encode()), "preview": encoded[:max_bytes]}


# What json.dumps writes for the values PostgreSQL's JSONB refuses.
_REFUSED_TOKENS = ("NaN", "Infinity", "\\u0000")


def _storable_text(text: str) -> str:
    return text.replace("\x00", "\ufffd")


def _storable(value: Any) -> Any:
    if isinstance(value, str):
        return _storable_text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "nan", "inf", "-inf"
    if isinstance(value, list):
        return [_storable(item) for item in value]
    if isinstance(value, dict):
        return {_storable_text(key): _storable(item) for key, item in value.items()}
    return value
