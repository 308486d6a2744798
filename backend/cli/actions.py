"""Commands that change something live: run now (and follow the run), schedule actions."""

import json
import time
from typing import Any

import click

from backend.cli import output
from backend.cli.client import Client
from backend.cli.errors import FAILED
from backend.cli.reads import signed_in

POLL_SECONDS = 0.5
WAIT_MARGIN_SECONDS = 60  # past the config's own timeout: queueing, retries' backoff


def parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    """`k=v` pairs; a value that reads as JSON (5, true, null, [1]) is that, else a string."""
    parsed: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--param")
        try:
            parsed[name] = json.loads(text)
        except ValueError:
            parsed[name] = text
    return parsed


def follow(api: Client, task_id: str, *, timeout: float, quiet: bool) -> dict[str, Any]:
    """Poll the run until it has its record; print each state it passes through."""
    deadline, seen = time.monotonic() + timeout, None
    while True:
        run = api.get(f"/tasks/executions/{task_id}")
        if run["state"] != seen and not quiet:
            click.echo(f"{task_id}: {run['state']}", err=True)
        seen = run["state"]
        if run["state"] == "finished":
            return run
        if time.monotonic() > deadline:
            raise click.exceptions.Exit(_gave_up(task_id, timeout, seen))
        time.sleep(POLL_SECONDS)


def _gave_up(task_id: str, timeout: float, state: str) -> int:
    click.echo(f"Error: run {task_id} is still {state} after {timeout:.0f} s", err=True)
    return FAILED


@click.command("run")
@click.argument("name")
@click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="a parameter for this run only (repeatable); the others keep the config's",
)
@click.option("--wait", is_flag=True, help="follow the run; exit 0 on success, 1 on failure")
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    metavar="SECONDS",
    help="with --wait: give up (exit 1) after this long [the config's timeout + 60 s]",
)
@output.output_option
def run(
    name: str, params: tuple[str, ...], wait: bool, timeout: float | None, output_: str
) -> None:
    """Run a config now."""  # fmt: skip
    overrides = parse_params(params)
    with signed_in() as api:
        config = api.config_by_name(name)
        body = {"parameters": {**config["parameters"], **overrides}} if overrides else None
        queued = api.post(f"/tasks/configs/{config['id']}/run", body)
        if not wait:
            _print(queued, output_, f"queued {queued['task_id']}")
            return
        limit = timeout or config["timeout_seconds"] + WAIT_MARGIN_SECONDS
        record = follow(api, queued["task_id"], timeout=limit, quiet=output_ == "json")
    if output_ == "json":
        output.emit_json(record)
    elif record["is_success"]:
        click.echo(f"succeeded in {record['duration_seconds']:.3f} s: "
                   f"{output.compact(record['result'])}")  # fmt: skip
    else:
        click.echo(f"failed after {record['duration_seconds']:.3f} s: {record['error_message']}")
    if not record["is_success"]:
        raise click.exceptions.Exit(FAILED)


def _print(data: dict[str, Any], output_: str, text: str) -> None:
    if output_ == "json":
        output.emit_json(data)
    else:
        click.echo(text)


def _action_command(action: str, summary: str, *, takes_note: bool = True) -> click.Command:
    @click.command(action, help=summary)
    @click.argument("name")
    @output.output_option
    def command(name: str, output_: str, note: str | None = None) -> None:
        with signed_in() as api:
            config = api.config_by_name(name)
            body = {"note": note} if note is not None else None
            changed = api.post(f"/tasks/configs/{config['id']}/actions/{action}", body)
        next_run = output.when(changed["next_run_at"])
        text = f"{name}: {changed['schedule_status']}" + (
            f", next run {next_run}" if next_run else ""
        )
        if changed.get("schedule_note"):
            text += f" ({changed['schedule_note']})"
        _print(changed, output_, text)

    if takes_note:  # the API keeps it as the schedule's note until the next action
        command = click.option(
            "--note", metavar="TEXT", help="why, shown with the schedule until its next action"
        )(command)
    return command


ACTIONS = [
    _action_command(
        "start", "Start a config's schedule (inactive or completed -> active).", takes_note=False
    ),
    _action_command("pause", "Pause an active schedule (its grid is kept)."),
    _action_command("resume", "Resume a paused schedule."),
    _action_command("stop", "Stop a schedule (active or paused -> inactive)."),
]
