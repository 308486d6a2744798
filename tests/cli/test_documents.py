"""Schedule documents: YAML errors with their line, the round trip of an export, the diff."""

from pathlib import Path

import pytest

from backend.cli import documents
from backend.cli.errors import CliError

ROOT = Path(__file__).resolve().parents[2]


def test_a_yaml_error_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("configs:\n  - name: a\n    task_type: [demo.sleep\n")
    with pytest.raises(CliError) as caught:
        documents.read(path)
    assert f"{path}:4:" in caught.value.message


@pytest.mark.parametrize("text", ["- a\n- b\n", "configs: {name: a}\n", "configs: []\nprune: 1\n"])
def test_a_document_is_a_mapping_of_configs(tmp_path: Path, text: str) -> None:
    path = tmp_path / "odd.yaml"
    path.write_text(text)
    with pytest.raises(CliError):
        documents.read(path)


def test_unquoted_timestamps_are_sent_as_text(tmp_path: Path) -> None:
    path = tmp_path / "date.yaml"
    path.write_text("configs:\n  - schedule_config: {run_date: 2035-01-01T00:05:00+00:00}\n")
    [config] = documents.read(path)
    assert config["schedule_config"]["run_date"] == "2035-01-01T00:05:00+00:00"


def test_the_example_has_one_config_of_each_schedule_type() -> None:
    configs = documents.read(ROOT / "examples" / "schedules.yaml")
    assert sorted(c["scheduler_type"] for c in configs) == ["cron", "date", "interval", "manual"]


def test_an_exported_item_reads_back_the_same(tmp_path: Path) -> None:
    config = {
        "id": 3, "name": "nap", "description": None, "task_type": "demo.sleep",
        "scheduler_type": "cron", "schedule_config": {"cron_expression": "*/5 * * * *"},
        "parameters": {"seconds": 1}, "max_retries": 0, "timeout_seconds": 300, "priority": 5,
        "overlap_policy": "skip", "schedule_status": "completed", "next_run_at": None,
    }  # fmt: skip
    item = documents.item_of(config)
    assert "description" not in item
    assert "schedule_status" not in item
    path = tmp_path / "export.yaml"
    path.write_text(documents.dump([item], header="exported\nby a test"))
    assert path.read_text().startswith("# exported\n# by a test\n")
    assert documents.read(path) == [item]


def test_the_plan_reads_as_a_diff() -> None:
    plan = {
        "create": ["new"], "delete": ["old"], "unchanged": ["same"], "applied": False,
        "update": [{"name": "nap", "changes": {
            "priority": [5, 8], "schedule_config": [{"minutes": 5}, {"minutes": 10}]}}],
        "schedule_errors": {},
    }  # fmt: skip
    assert documents.render_plan(plan) == [
        "+ create  new",
        "~ update  nap",
        "    priority: 5 -> 8",
        "    schedule_config: {minutes: 5} -> {minutes: 10}",
        "- delete  old",
        "= unchanged  same",
        "Dry run, nothing applied: 1 to create, 1 to update, 1 to delete, 1 unchanged.",
    ]
