"""What the CLI prints: plain tables for people, `--output json` for scripts."""

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

output_option = click.option(
    "--output",
    "-o",
    "output_",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="json: the API's answer as JSON, for scripts",
)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Columns padded to their widest cell; empty cells read `-`."""
    cells = [[_text(value) for value in row] for row in rows]
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
    for row in [list(headers), *cells]:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo(line.rstrip())


def fields(pairs: Sequence[tuple[str, Any]]) -> None:
    width = max(len(name) for name, _ in pairs)
    for name, value in pairs:
        click.echo(f"{name.ljust(width)}  {_text(value)}")


def when(value: str | None) -> str | None:
    """An API time as `2030-01-01 02:00:00+00:00` (seconds, no fraction)."""
    if not value:
        return None
    return str(datetime.fromisoformat(value).replace(microsecond=0)).replace("T", " ")


def compact(value: Any) -> str:
    return json.dumps(value, separators=(", ", ": "), default=str)


def _text(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return compact(value)
    return str(value)
