"""`taskhub`: the command line of the Taskhub API (entry point `main`).

Click, because it is Pallets' long-kept library that uvicorn already brings in (no new
package), and its usage errors exit 2, which is our exit code for every error before work.
"""

import os
import socket
import sys

import click

from backend.cli import actions, documents_commands, errors, reads
from backend.cli.client import Client
from backend.cli.credentials import TOKEN_ENV, URL_ENV, Credentials, save

EPILOG = """\b
Exit codes: 0 done; 1 done but it failed (run --wait: the run failed or did not finish
in time; apply: a schedule change failed); 2 nothing done (usage, credentials, file,
API or connection error).
\b
Credentials: `taskhub login` keeps them in ~/.config/taskhub/credentials (mode 0600);
TASKHUB_URL and TASKHUB_TOKEN (an API token) win over that file.
`taskhub next NAME` comes with the API's schedule preview endpoint (not there yet):
`taskhub show NAME` shows the next run meanwhile."""


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="taskhub")
def cli() -> None:
    """Drive Taskhub from a terminal or a script: configs, runs, schedules as code."""


@cli.command()
@click.option("--url", envvar=URL_ENV, required=True, help="the API, e.g. http://localhost:8000")
@click.option("--username", help="asked for when TASKHUB_TOKEN is not set")
def login(url: str, username: str | None) -> None:
    """Sign in with TASKHUB_TOKEN (an API token), or a username and password (an API token
    is then created for this CLI); the credentials are kept for later commands."""
    token = os.environ.get(TOKEN_ENV) or _token_from_password(url, username)
    with Client(url=url, token=token) as api:
        me = api.get("/users/me")
    path = save(Credentials(url=url, token=token))
    click.echo(f"Signed in to {url} as {me['username']} ({me.get('effective_role', 'user')}); "
               f"credentials in {path}")  # fmt: skip


def _token_from_password(url: str, username: str | None) -> str:
    username = username or click.prompt("Username")
    password = click.prompt("Password", hide_input=True)
    with Client(url=url) as anonymous:
        pair = anonymous.post("/auth/login", {"username": username, "password": password})
    name = f"taskhub CLI on {socket.gethostname()}"[:200]
    with Client(url=url, token=pair["access_token"]) as api:
        created = api.post("/tokens", {"name": name})
    return created["token"]


for command in [
    reads.list_configs, reads.show, reads.next_runs, reads.runs, reads.status,
    actions.run, *actions.ACTIONS, documents_commands.apply, documents_commands.export,
]:  # fmt: skip
    cli.add_command(command)


def main() -> None:
    """The console script: Click's own errors exit 2; anything unforeseen too, without a
    traceback (this is the one place that catches everything)."""
    try:
        # Not standalone: Click returns the code of an Exit (also --help's) instead of exiting.
        code = cli.main(standalone_mode=False, prog_name="taskhub")
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(errors.ERROR)
    except Exception as exc:
        click.echo(f"Error: unexpected {type(exc).__name__}: {exc}", err=True)
        sys.exit(errors.ERROR)
    sys.exit(code if isinstance(code, int) else errors.OK)
