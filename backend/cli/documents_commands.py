"""`taskhub apply` and `taskhub export`: schedules kept as a YAML document in git."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from backend.cli import documents, output
from backend.cli.errors import FAILED, CliError
from backend.cli.reads import signed_in


@click.command("apply")
@click.option(
    "-f",
    "--file",
    "path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="the YAML document",
)
@click.option("--prune", is_flag=True, help="also delete every config the document omits")
@click.option("--dry-run", is_flag=True, help="only show the plan")
@click.option(
    "--confirm-empty",
    is_flag=True,
    help="with --prune and a document of no configs: really delete them all",
)
@output.output_option
def apply(path: Path, prune: bool, dry_run: bool, confirm_empty: bool, output_: str) -> None:
    """Make the configs what the document says, all at once (or nothing on an error), and
    print the plan as a diff. Configs are matched by name."""  # fmt: skip
    configs = documents.read(path)
    body = {"configs": configs, "prune": prune, "dry_run": dry_run,
            "confirm_empty": confirm_empty}  # fmt: skip
    with signed_in() as api:
        try:
            plan = api.post("/tasks/configs/apply", body)
        except CliError as exc:
            raise _naming_items(exc, configs) from None
    if output_ == "json":
        output.emit_json(plan)
    else:
        for line in documents.render_plan(plan):
            click.echo(line)
    if plan["schedule_errors"]:
        raise click.exceptions.Exit(FAILED)


def _naming_items(exc: CliError, configs: list[dict[str, Any]]) -> CliError:
    """Field errors of item N say its name too: `configs[1] (nightly ping).priority`."""
    for field in exc.fields:
        loc = field.get("loc", [])
        if loc[1:2] == ["configs"] and len(loc) > 2 and isinstance(loc[2], int):
            name = configs[loc[2]].get("name") if loc[2] < len(configs) else None
            if isinstance(name, str):
                field["msg"] = f"({name}) {field.get('msg')}"
    return exc


@click.command("export")
@click.argument("names", nargs=-1)
@output.output_option
def export(names: tuple[str, ...], output_: str) -> None:
    """Write the configs (all, or those NAMES) as a document `taskhub apply -f` reads back
    as all-unchanged: `taskhub export > schedules.yaml`."""
    with signed_in() as api:
        if names:
            configs = [api.config_by_name(name) for name in names]
        else:
            configs = api.all_pages("/tasks/configs")
        url = api.url
    items = [documents.item_of(config) for config in configs]
    if output_ == "json":
        output.emit_json({"configs": items})
        return
    stamp = datetime.now(UTC).replace(microsecond=0).isoformat()
    header = (f"Taskhub configs exported from {url} at {stamp}.\n"
              "Apply with: taskhub apply -f FILE [--prune] [--dry-run]")  # fmt: skip
    click.echo(documents.dump(items, header=header), nl=False)
