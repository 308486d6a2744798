"""End to end: task types from another package (TASK_MODULES), and runs of a type a worker
lacks. The example package (examples/custom_tasks) is put on the processes' PYTHONPATH, not
installed: the shared environment stays as it is."""

import os
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.config import get_settings
from backend.services import runs
from tests.support import processes
from tests.support.api_process import ApiServer, start_api
from tests.support.factories import create_config
from tests.support.processes import ROOT, eventually
from tests.support.runs import records
from tests.support.worker_process import Worker

pytestmark = pytest.mark.e2e

EXAMPLE_SRC = ROOT / "examples" / "custom_tasks" / "src"
WITH_EXAMPLE = {
    "TASK_MODULES": "custom_tasks.reports",
    "PYTHONPATH": os.pathsep.join(
        p for p in (str(EXAMPLE_SRC), os.environ.get("PYTHONPATH", "")) if p
    ),
}
MISSING = {"TASK_MODULES": "custom_tasks.reports, no_such_task_module"}


@pytest.fixture(scope="module")
async def worker(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Worker]:
    process = Worker(tmp_path_factory.mktemp("modules") / "worker.log", env=WITH_EXAMPLE)
    await process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
async def api() -> AsyncIterator[ApiServer]:
    server = await start_api(**WITH_EXAMPLE)
    yield server
    processes.stop(server.process)


async def test_a_type_from_task_modules_runs_through_api_and_worker(
    worker: Worker,
    api: ApiServer,
    sessionmaker: async_sessionmaker[AsyncSession],
    superuser_headers: dict[str, str],
) -> None:
    async with httpx.AsyncClient(base_url=api.base_url, headers=superuser_headers) as http:
        types = (await http.get("/api/v1/tasks/types")).json()
        [example] = [t for t in types if t["name"] == "example.report"]
        assert "context" not in example["parameters_schema"]["properties"]
        created = await http.post(
            "/api/v1/tasks/configs",
            json={
                "name": f"report-{uuid.uuid4().hex[:8]}",
                "task_type": "example.report",
                "scheduler_type": "manual",
                "parameters": {"name": "sales", "period_minutes": 15},
            },
        )
        assert created.status_code == 201, created.text
        config_id = created.json()["id"]
        sent = await http.post(f"/api/v1/tasks/configs/{config_id}/run")
        assert sent.status_code == 202, sent.text
        task_id = sent.json()["task_id"]

        async def finished() -> dict[str, Any] | None:
            got = (await http.get(f"/api/v1/tasks/executions/{task_id}")).json()
            return got if got["state"] == "finished" else None

        record = await eventually(finished, timeout=30)
    assert record["is_success"] is True, record
    assert record["result"]["report"] == "sales"
    assert record["result"]["trigger"] == "manual"
    assert record["result"]["attempt"] == "1/1"
    assert record["scheduled_for"] is None
    assert len(await records(sessionmaker, config_id)) == 1


async def test_a_backfilled_run_gets_its_fire_time_in_its_context(
    worker: Worker,
    api: ApiServer,
    sessionmaker: async_sessionmaker[AsyncSession],
    superuser_headers: dict[str, str],
) -> None:
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    async with httpx.AsyncClient(base_url=api.base_url, headers=superuser_headers) as http:
        created = await http.post(
            "/api/v1/tasks/configs",
            json={
                "name": f"hourly-report-{uuid.uuid4().hex[:8]}",
                "task_type": "example.report",
                "scheduler_type": "cron",
                "schedule_config": {"cron_expression": "0 * * * *"},
                "parameters": {"name": "sales", "period_minutes": 60},
                "max_retries": 2,
            },
        )
        config_id = created.json()["id"]
        sent = await http.post(
            f"/api/v1/tasks/configs/{config_id}/backfill",
            json={"start": (end - timedelta(hours=1)).isoformat(), "end": end.isoformat()},
        )
        assert sent.status_code == 202, sent.text

    async def both() -> list[Any]:
        return await records(sessionmaker, config_id)

    found = await eventually(both, lambda rows: len(rows) == 2, timeout=30)
    for record in found:
        assert record.is_success, record.error_message
        assert record.result["trigger"] == "backfill"
        assert record.result["period_end"] == record.scheduled_for.isoformat()
        assert record.result["attempt"] == "1/3"
    assert sorted(r.scheduled_for for r in found) == [end - timedelta(hours=1), end]


async def test_a_run_of_a_type_the_worker_lacks_ends_in_one_failed_record(
    worker: Worker,
    app: FastAPI,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    # As if the API had a module the worker was started without: sent by name, unchecked.
    config = await create_config(session, task_type="team.not_here", max_retries=2)
    await runs.send(
        app.state.broker,
        task_name="team.not_here",
        task_id=uuid.uuid4().hex,
        labels=runs.labels_for(config, trigger="manual"),
        parameters={"seconds": 0},
        timeout=get_settings().broker_send_timeout_seconds,
    )

    async def recorded() -> list[Any]:
        return await records(sessionmaker, config.id)

    [record] = await eventually(recorded, timeout=30)
    assert record.is_success is False
    assert record.attempts == 1  # not retried: another attempt could not find it either
    assert record.error_message is not None
    assert "UnknownTaskType" in record.error_message
    assert "'team.not_here' is not registered in this worker" in record.error_message
    # No retry arrives later, so no second record either.
    assert worker.log_count("is not registered in this worker") >= 1
    assert len(await recorded()) == 1


async def test_a_worker_with_a_module_it_cannot_import_exits_at_start(tmp_path: Path) -> None:
    failing = Worker(tmp_path / "failing.log", env={**WITH_EXAMPLE, **MISSING})
    failing.spawn()
    assert failing.process is not None
    try:
        code = await eventually(
            lambda: _poll(failing.process), lambda code: code is not None, timeout=60
        )
    finally:
        failing.stop()
    assert code == -signal.SIGUSR1  # the child stopped taskiq's manager (shells see 138)
    log = failing.log_path.read_text(errors="replace")
    assert "cannot import task module 'no_such_task_module' (from TASK_MODULES)" in log
    assert "restarted" not in log  # never a second child


async def test_an_api_with_a_module_it_cannot_import_exits_at_start() -> None:
    process = processes.start(
        ["uvicorn", "backend.main:app", "--host", "127.0.0.1", "--port", "0"],
        log_name=f"api-bad-modules-{uuid.uuid4().hex[:6]}",
        env={**WITH_EXAMPLE, **MISSING},
    )
    try:
        code = await eventually(lambda: _poll(process), lambda code: code is not None, timeout=60)
    finally:
        processes.stop(process)
    assert code != 0
    log = process.log_path.read_text(errors="replace")  # type: ignore[attr-defined]
    assert "cannot import task module 'no_such_task_module' (from TASK_MODULES)" in log


async def _poll(process: subprocess.Popen[bytes] | None) -> int | None:
    assert process is not None
    return process.poll()
