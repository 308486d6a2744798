"""The CLI's errors and exit codes (documented in `taskhub --help` and the README).

0: done (a waited-for run succeeded). 1: done, but what it did failed (a run failed or did
not finish in time; a schedule change of an apply failed). 2: nothing done: a usage error,
no credentials, an unreadable file, an API error or an unreachable API.
"""

from typing import Any

import click

OK, FAILED, ERROR = 0, 1, 2


class CliError(click.ClickException):
    """Printed as `Error: message` (plus the API's field errors); exit code 2."""

    exit_code = ERROR

    def __init__(self, message: str, *, fields: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.fields = fields or []

    def format_message(self) -> str:
        lines = [self.message]
        lines += [f"  {_where(field.get('loc', []))}: {field.get('msg')}" for field in self.fields]
        return "\n".join(lines)


def _where(loc: list[Any]) -> str:
    """`["body", "configs", 1, "minute"]` -> `configs[1].minute`."""
    parts = [part for part in loc if part != "body"]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "body"
