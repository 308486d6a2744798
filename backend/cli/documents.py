"""Schedules as code: a YAML document of configs (`configs: [...]`), read by `apply`,
written by `export`, and the plan an apply answers, shown as a diff."""

from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from backend.cli.errors import CliError

# The fields of a config a document holds, in the order export writes them.
FIELDS = (
    "name", "description", "task_type", "scheduler_type", "schedule_config", "parameters",
    "max_retries", "timeout_seconds", "priority", "overlap_policy",
)  # fmt: skip
SETTABLE_STATUSES = ("active", "inactive", "paused")  # `completed` is reached, not asked for


def read(path: Path) -> list[dict[str, Any]]:
    """The document's configs; CliError with the line of a YAML error."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise CliError(f"Cannot read {path}: {exc.strerror}") from exc
    try:
        document = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise CliError(f"{where}: not valid YAML: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise CliError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(document, dict) or set(document) != {"configs"}:
        raise CliError(f"{path}: expected a mapping with one key, `configs`, holding a list")
    configs = document["configs"] or []
    if not isinstance(configs, list) or not all(isinstance(c, dict) for c in configs):
        raise CliError(f"{path}: `configs` must be a list of mappings")
    return [_plain(config) for config in configs]


def _plain(value: Any) -> Any:
    """As JSON would hold it: YAML reads an unquoted 2030-01-01T02:00:00Z as a datetime."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def item_of(config: dict[str, Any]) -> dict[str, Any]:
    """A config as the API returns it -> the document item `apply` reads back unchanged."""
    item = {name: config[name] for name in FIELDS if config.get(name) is not None}
    if config["schedule_status"] in SETTABLE_STATUSES:
        item["schedule_status"] = config["schedule_status"]
    return item


def dump(items: list[dict[str, Any]], *, header: str) -> str:
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    body = yaml.safe_dump({"configs": items}, sort_keys=False, allow_unicode=True, width=100)
    return comment + body


def render_plan(plan: dict[str, Any]) -> list[str]:
    """The plan as a readable diff: + create, ~ update (field: old -> new), - delete."""
    lines = [f"+ create  {name}" for name in plan["create"]]
    for update in plan["update"]:
        lines.append(f"~ update  {update['name']}")
        for field, (old, new) in update["changes"].items():
            lines.append(f"    {field}: {_value(old)} -> {_value(new)}")
    lines += [f"- delete  {name}" for name in plan["delete"]]
    if plan["unchanged"]:
        lines.append(f"= unchanged  {', '.join(plan['unchanged'])}")
    counts = (
        f"{len(plan['create'])} to create, {len(plan['update'])} to update, "
        f"{len(plan['delete'])} to delete, {len(plan['unchanged'])} unchanged"
    )
    lines.append(
        f"Applied: {counts}." if plan["applied"] else f"Dry run, nothing applied: {counts}."
    )
    lines += [f"! schedule of {name}: {error}" for name, error in plan["schedule_errors"].items()]
    return lines


def _value(value: Any) -> str:
    return (
        yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("\n...")
    )
