"""Where the CLI keeps its sign-in: `~/.config/taskhub/credentials` (mode 0600), or the
environment (`TASKHUB_URL`, `TASKHUB_TOKEN`), which wins over the file."""

import json
import os
from dataclasses import dataclass
from pathlib import Path

from backend.cli.errors import CliError

URL_ENV = "TASKHUB_URL"
TOKEN_ENV = "TASKHUB_TOKEN"  # noqa: S105  the name of a variable, not a secret


@dataclass(frozen=True)
class Credentials:
    url: str
    token: str


def path() -> Path:
    config_home = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config_home) / "taskhub" / "credentials"


def load() -> Credentials:
    """The environment's credentials, else the file's; CliError naming `taskhub login`."""
    url, token = os.environ.get(URL_ENV), os.environ.get(TOKEN_ENV)
    if url and token:
        return Credentials(url=url, token=token)
    stored = path()
    if not stored.exists():
        raise CliError(f"Not signed in: run `taskhub login --url URL` (or set {URL_ENV} and "
                       f"{TOKEN_ENV})")  # fmt: skip
    try:
        data = json.loads(stored.read_text())
        return Credentials(url=url or data["url"], token=token or data["token"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CliError(f"{stored} is damaged: run `taskhub login` again") from exc


def save(credentials: Credentials) -> Path:
    """Write the file readable by its owner only (created so: never briefly world-readable)."""
    target = path()
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = target.with_suffix(".tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump({"url": credentials.url, "token": credentials.token}, file)
    temporary.replace(target)
    return target
