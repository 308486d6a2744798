from datetime import UTC, datetime
from importlib.metadata import EntryPoint
from typing import Any

import pytest
from pydantic import BaseModel
from taskiq import Context, TaskiqMessage

from backend.broker import broker
from backend.config import Settings
from backend.tasks import ENTRY_POINT_GROUP, RunContext, TaskModuleError, load_all, registry
from backend.tasks import context as run_context


class EchoParameters(BaseModel):
    text: str


async def test_a_type_defined_anywhere_is_registered_for_api_and_broker() -> None:
    @registry.task_type("test.echo", description="Echo text back.", parameters=EchoParameters)
    async def echo(params: EchoParameters) -> str:
        return params.text

    registered = registry.get("test.echo")
    assert registered is not None
    assert registered.description == "Echo text back."
    assert registered.parameters_schema()["required"] == ["text"]
    assert broker.find_task("test.echo") is not None
    assert "test.echo" in [t.name for t in registry.all_types()]


def test_shipped_types_are_loaded() -> None:
    load_all()
    assert registry.get("demo.sleep") is not None


def message(task_name: str, **labels: Any) -> TaskiqMessage:
    return TaskiqMessage(
        task_id="s3-1796104800000", task_name=task_name, labels=labels, args=[], kwargs={}
    )


def test_run_context_from_the_labels_of_a_scheduled_run() -> None:
    got = run_context.of_message(
        message(
            "demo.sleep", config_id="3", trigger="scheduled", retry_on_error="True",
            max_retries="4", _retries="1", scheduled_for="2026-12-01T06:00:00+00:00",
        )
    )  # fmt: skip
    assert got == RunContext(
        task_id="s3-1796104800000",
        config_id=3,
        trigger="scheduled",
        scheduled_for=datetime(2026, 12, 1, 6, tzinfo=UTC),
        attempt=2,
        max_attempts=4,
    )


def test_run_context_of_a_manual_run_without_retries() -> None:
    got = run_context.of_message(
        message("demo.sleep", trigger="manual", retry_on_error=False, max_retries=1)
    )
    assert (got.config_id, got.trigger, got.scheduled_for) == (None, "manual", None)
    assert (got.attempt, got.max_attempts) == (1, 1)


async def test_a_task_declaring_context_gets_it_and_its_schema_does_not_show_it() -> None:
    seen: list[RunContext] = []

    @registry.task_type("test.context", description="Keep the context.", parameters=EchoParameters)
    async def keep(params: EchoParameters, context: RunContext) -> str:
        seen.append(context)
        return params.text

    registered = registry.get("test.context")
    assert registered is not None
    assert set(registered.parameters_schema()["properties"]) == {"text"}
    task = broker.find_task("test.context")
    assert task is not None
    sent = message("test.context", config_id=9, trigger="backfill", scheduled_for="2026-01-01")
    assert await task.original_func(Context(sent, broker), text="hi") == "hi"
    assert seen[0].trigger == "backfill"
    assert seen[0].scheduled_for == datetime(2026, 1, 1)  # as sent; the labels carry UTC


def test_task_modules_setting_is_comma_separated() -> None:
    settings = Settings(task_modules=" team.tasks, other.tasks ,,")
    assert settings.task_module_names == ["team.tasks", "other.tasks"]
    assert Settings().task_module_names == []


def test_a_task_module_that_fails_to_import_is_a_clear_error() -> None:
    with pytest.raises(TaskModuleError, match=r"'no_such_module_16c' .*TASK_MODULES"):
        load_all(["no_such_module_16c"])


def test_entry_point_modules_are_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    import backend.tasks

    groups: list[str] = []

    def entry_points(group: str) -> list[EntryPoint]:
        groups.append(group)
        # An installed module (so it imports), and one that is gone (so it stops the load).
        return [
            EntryPoint(name="fine", value="backend.tasks.demo", group=group),
            EntryPoint(name="broken", value="no_such_module_16c", group=group),
        ]

    monkeypatch.setattr(backend.tasks, "entry_points", entry_points)
    with pytest.raises(TaskModuleError, match="'no_such_module_16c' \\(from entry point 'broken'"):
        load_all()
    assert groups == [ENTRY_POINT_GROUP]


def test_a_task_taking_what_nobody_passes_is_refused_at_registration() -> None:
    with pytest.raises(TypeError, match="takes ctx, but only the parameters model and resources"):

        @registry.task_type("test.ctx", description="Wrong name.", parameters=EchoParameters)
        async def wrong(params: EchoParameters, ctx: RunContext) -> None:
            return None

    assert registry.get("test.ctx") is None
