"""The schedule options with real processes: two scheduler replicas and a worker send and run
what the previews promised, and nothing beyond max_runs or outside the window; a cron without
options starts its run at the next run its start promised."""

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.services.redis import history
from backend.services.redis import scheduler as schedule_state
from tests.support import processes
from tests.support.factories import create_config
from tests.support.runs import records
from tests.support.worker_process import Worker

pytestmark = pytest.mark.e2e
CONFIGS = "/api/v1/tasks/configs"


async def fired_at(redis: Redis, config_id: int) -> list[datetime]:
    events, _ = await history.read(redis, config_id, limit=100)
    return sorted(datetime.fromisoformat(e["fire_at"]) for e in events if e["event"] == "fired")


async def status_of(redis: Redis, config_id: int) -> str:
    return (await schedule_state.read_state(redis, config_id)).status


async def start(client: httpx.AsyncClient, headers: dict, config_id: int) -> dict:
    response = await client.post(f"{CONFIGS}/{config_id}/actions/start", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_limits_windows_and_jitter_are_sent_as_previewed(
    client: httpx.AsyncClient,
    superuser_headers: dict,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    tmp_path: Path,
) -> None:
    worker = Worker(tmp_path / "worker.log")
    replicas = [processes.start_scheduler(f"options-{i}") for i in range(2)]
    jittered = cron = plain_cron = None
    try:
        # All three start at once: on a loaded machine each takes seconds.
        await asyncio.gather(
            worker.start(), *(processes.scheduler_ready(process) for process in replicas)
        )
        # allow: a run still in flight on this loaded machine must not make the next one skip
        sleep0 = {
            "task_type": "demo.sleep", "parameters": {"seconds": 0}, "overlap_policy": "allow"
        }  # fmt: skip
        limited = await create_config(
            session, scheduler_type="interval",
            schedule_config={"seconds": 1, "max_runs": 3}, **sleep0,
        )  # fmt: skip
        opens = (datetime.now(UTC) + timedelta(seconds=6)).replace(microsecond=0)
        closes = opens + timedelta(seconds=3)
        window = await create_config(
            session, scheduler_type="interval",
            schedule_config={
                "seconds": 1, "start_at": opens.isoformat(), "end_at": closes.isoformat()
            },
            **sleep0,
        )  # fmt: skip
        jittered = await create_config(
            session, scheduler_type="interval",
            schedule_config={"seconds": 3, "jitter_seconds": 2}, **sleep0,
        )  # fmt: skip
        # Every minute, up to 10 s late: the test waits for the next minute (30 s on average)
        # plus the jitter, so a small one keeps the wait short.
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
        cron = await create_config(
            session, scheduler_type="cron",
            schedule_config={
                "cron_expression": "* * * * *", "jitter_seconds": 10, "exclude": [tomorrow]
            },
            **sleep0,
        )  # fmt: skip
        # No options: its promised next run (the start's answer) is when its run starts. Here,
        # not in test_scheduler_e2e's next-run test, so that one minute's wait serves both crons.
        plain_cron = await create_config(
            session, scheduler_type="cron", schedule_config={"cron_expression": "* * * * *"},
            **sleep0,
        )  # fmt: skip
        for config in (limited, window, jittered, cron):
            await start(client, superuser_headers, config.id)
        promised = datetime.fromisoformat(
            (await start(client, superuser_headers, plain_cron.id))["next_run_at"]
        )
        previews = {}
        for config in (jittered, cron):
            response = await client.get(
                f"{CONFIGS}/{config.id}/next-runs", params={"count": 4}, headers=superuser_headers
            )
            previews[config.id] = [datetime.fromisoformat(r["at"]) for r in response.json()["runs"]]

        # max_runs 3: exactly three fires and three records, then completed.
        await processes.eventually(
            lambda: status_of(redis, limited.id), lambda s: s == "completed", timeout=20
        )
        assert len(await fired_at(redis, limited.id)) == 3
        runs = await processes.eventually(
            lambda: records(sessionmaker, limited.id), lambda r: len(r) == 3, timeout=10
        )
        assert {run.trigger for run in runs} == {"scheduled"}

        # The window: the fires at opens .. closes, each second, then completed.
        await processes.eventually(
            lambda: status_of(redis, window.id), lambda s: s == "completed", timeout=25
        )
        assert await fired_at(redis, window.id) == [opens + timedelta(seconds=k) for k in range(4)]

        # Jitter: the fires sent are the previewed times, whatever the replica that sent them.
        sent = await processes.eventually(
            lambda: fired_at(redis, jittered.id), lambda f: len(f) >= 4, timeout=25
        )
        assert sent[:4] == previews[jittered.id]
        sent_cron = await processes.eventually(
            lambda: fired_at(redis, cron.id), lambda f: len(f) >= 1, timeout=90
        )
        assert sent_cron[0] == previews[cron.id][0]
        cron_runs = await processes.eventually(
            lambda: records(sessionmaker, cron.id), lambda r: len(r) >= 1, timeout=20
        )
        assert abs((cron_runs[0].started_at - sent_cron[0]).total_seconds()) < 2
        plain_runs = await processes.eventually(
            lambda: records(sessionmaker, plain_cron.id), lambda r: len(r) >= 1, timeout=90
        )
        assert abs((plain_runs[0].started_at - promised).total_seconds()) < 2
        assert plain_runs[0].trigger == "scheduled"
        assert [process.poll() for process in replicas] == [None, None], "a replica died"
    finally:
        for config in (
            c for c in (jittered, cron, plain_cron) if c is not None
        ):  # left active, a later test's scheduler would fire them
            await client.post(f"{CONFIGS}/{config.id}/actions/stop", headers=superuser_headers)
        for process in replicas:
            processes.stop(process)
        worker.stop()
