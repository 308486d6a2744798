"""Read commands: configs, show, next, runs, status. Each takes `--output json`."""

from typing import Any

import click

from backend.cli import output
from backend.cli.client import Client
from backend.cli.credentials import load

STATUSES = click.Choice(["inactive", "active", "paused", "completed"])


def signed_in() -> Client:
    return Client.signed_in(load())


def last_result(stats: dict[str, Any] | None) -> str | None:
    if not stats or stats.get("last_run_at") is None:
        return None
    outcome = "ok" if stats.get("last_run_success") else "failed"
    return f"{outcome} {output.when(stats['last_run_at'])}"


@click.command("configs")
@click.option("--status", type=STATUSES, help="only configs whose schedule has this status")
@click.option("--type", "task_type", metavar="TASK_TYPE", help="only this task type")
@click.option("--search", help="only names or descriptions containing this")
@output.output_option
def list_configs(
    status: str | None, task_type: str | None, search: str | None, output_: str
) -> None:
    """List task configs: name, task type, schedule in words, status, next run, last result."""
    with signed_in() as api:
        items = api.all_pages(
            "/tasks/configs", schedule_status=status, task_type=task_type, search=search,
            include_stats=True,
        )  # fmt: skip
    if output_ == "json":
        output.emit_json(items)
        return
    rows = [
        [c["name"], c["task_type"], c["schedule_description"], c["schedule_status"],
         output.when(c["next_run_at"]), last_result(c.get("stats"))]
        for c in items
    ]  # fmt: skip
    output.table(["NAME", "TYPE", "SCHEDULE", "STATUS", "NEXT RUN", "LAST RESULT"], rows)


@click.command("show")
@click.argument("name")
@output.output_option
def show(name: str, output_: str) -> None:
    """One config with its live state, run stats and recent schedule history."""
    with signed_in() as api:
        config = api.config_by_name(name, include_stats=True, include_history=True)
    if output_ == "json":
        output.emit_json(config)
        return
    stats = config.get("stats") or {}
    output.fields([
        ("name", config["name"]), ("id", config["id"]), ("description", config["description"]),
        ("task type", config["task_type"]), ("parameters", config["parameters"]),
        ("schedule", config["schedule_description"]),
        ("schedule config", {"type": config["scheduler_type"], **config["schedule_config"]}),
        ("status", config["schedule_status"]), ("next run", output.when(config["next_run_at"])),
        ("retries", config["max_retries"]), ("timeout", f"{config['timeout_seconds']} s"),
        ("priority", config["priority"]), ("overlap", config["overlap_policy"]),
        ("runs", f"{stats.get('total_runs', 0)} ({stats.get('failures', 0)} failed)"),
        ("last result", last_result(stats)),
    ])  # fmt: skip
    history = config.get("recent_history") or []
    if history:
        click.echo("\nrecent history:")
        for event in history:
            click.echo(f"  {output.when(event.get('at'))}  {event.get('event')}")


@click.command("next")
@click.argument("name")
@click.option("-n", "count", type=click.IntRange(1, 100), default=10, show_default=True)
@output.output_option
def next_runs(name: str, count: int, output_: str) -> None:
    """A config's next runs, exactly as the scheduler will send them (jitter included)."""
    with signed_in() as api:
        config = api.config_by_name(name)
        preview = api.get(f"/tasks/configs/{config['id']}/next-runs", count=count)
    if output_ == "json":
        output.emit_json(preview)
        return
    if not preview["active"]:
        click.echo(f"not active: the runs a start now would give ({config['schedule_status']})")
    rows = [[run["local"], run["at"], run["nominal"]] for run in preview["runs"]]
    output.table([f"LOCAL ({preview['timezone']})", "UTC", "NOMINAL"], rows)
    if preview["remaining_runs"] is not None:
        click.echo(f"max_runs leaves {preview['remaining_runs']}")


@click.command("runs")
@click.argument("name")
@click.option("--failed", is_flag=True, help="only failed runs")
@click.option("-n", "count", type=click.IntRange(1, 100), default=20, show_default=True)
@output.output_option
def runs(name: str, failed: bool, count: int, output_: str) -> None:
    """A config's latest runs, newest first."""
    with signed_in() as api:
        config = api.config_by_name(name)
        page = api.get(
            f"/tasks/configs/{config['id']}/executions",
            limit=count, is_success="false" if failed else None,
        )  # fmt: skip
    if output_ == "json":
        output.emit_json(page["items"])
        return
    rows = [
        [run["task_id"], output.when(run["started_at"]), f"{run['duration_seconds']:.3f} s",
         "ok" if run["is_success"] else "failed", run["trigger"], run["error_message"]]
        for run in page["items"]
    ]  # fmt: skip
    output.table(["TASK ID", "STARTED", "DURATION", "RESULT", "TRIGGER", "ERROR"], rows)


@click.command("status")
@output.output_option
def status(output_: str) -> None:
    """The system: backing services reachable, configs, active schedules, runs in flight."""
    with signed_in() as api:
        system = api.get("/tasks/status")
    if output_ == "json":
        output.emit_json(system)
        return
    checks = [(f"{name}", state) for name, state in system.get("checks", {}).items()]
    counts = [(name.replace("_", " "), value) for name, value in system.items() if name != "checks"]
    output.fields([*checks, *counts])
