"""Metrics written by a real worker and a real scheduler, read through the API's /metrics."""

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from prometheus_client.samples import Sample
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support import processes
from tests.support.factories import create_config
from tests.support.metrics import reader, scrape, value
from tests.support.processes import eventually
from tests.support.runs import records
from tests.support.worker_process import Worker

pytestmark = pytest.mark.e2e

TYPE = "demo.sleep"
FINISHED = "taskhub_runs_finished_total"


@pytest.fixture(scope="module")
async def worker(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Worker]:
    process = Worker(tmp_path_factory.mktemp("metrics-worker") / "worker.log")
    await process.start()
    yield process
    process.stop()


@pytest.fixture
async def scheduler() -> AsyncIterator[None]:
    process = processes.start_scheduler("metrics-scheduler")
    # A fire due before the scheduler's start-up finished is sent late by design: the lag
    # check below is about a running scheduler.
    await processes.scheduler_ready(process)
    yield
    processes.stop(process)


async def run_now(client: httpx.AsyncClient, headers: dict[str, str], config_id: int) -> None:
    response = await client.post(f"/api/v1/tasks/configs/{config_id}/run", headers=headers)
    assert response.status_code == 202, response.text


@pytest.mark.usefixtures("worker")
async def test_worker_counts_runs_per_task_type(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    superuser_headers: dict[str, str],
) -> None:
    before = await scrape(client)
    succeeding = await create_config(session, parameters={"seconds": 0.3})
    failing = await create_config(session, parameters={"fail": True, "message": "boom"})
    for config in (succeeding, failing):
        await run_now(client, superuser_headers, config.id)
    for config in (succeeding, failing):
        await eventually(lambda c=config: records(sessionmaker, c.id), timeout=15)

    def moved(name: str, by: float, **labels: str) -> Callable[[], Awaitable[bool]]:
        async def probe() -> bool:
            return value(await scrape(client), name, **labels) >= value(before, name, **labels) + by

        return probe

    await eventually(moved(FINISHED, 1, task_type=TYPE, outcome="succeeded"))
    await eventually(moved(FINISHED, 1, task_type=TYPE, outcome="failed"))
    await eventually(moved("taskhub_runs_started_total", 2, task_type=TYPE))
    await eventually(moved("taskhub_run_duration_seconds_count", 2, task_type=TYPE))
    after = await scrape(client)

    def over_quarter_second(samples: list[Sample]) -> float:
        count = value(samples, "taskhub_run_duration_seconds_count", task_type=TYPE)
        le = value(samples, "taskhub_run_duration_seconds_bucket", task_type=TYPE, le="0.25")
        return count - le

    # The 0.3 s run lands above the 0.25 s bucket: durations are observed, not just counted.
    assert over_quarter_second(after) >= over_quarter_second(before) + 1


@pytest.mark.usefixtures("worker")
async def test_runs_in_flight_gauge_reads_the_live_runs(
    client: httpx.AsyncClient, session: AsyncSession, superuser_headers: dict[str, str]
) -> None:
    config = await create_config(session, parameters={"seconds": 2}, timeout_seconds=30)
    in_flight = reader(client, "taskhub_runs_in_flight")
    await run_now(client, superuser_headers, config.id)
    assert await eventually(in_flight, lambda n: n >= 1) >= 1
    assert await eventually(in_flight, lambda n: n == 0, timeout=15) == 0


@pytest.mark.usefixtures("worker", "scheduler")
async def test_scheduler_counts_fires_and_observes_its_lag(
    client: httpx.AsyncClient, session: AsyncSession, superuser_headers: dict[str, str]
) -> None:
    # A type no other test schedules: a schedule another test left active in this shared
    # database would otherwise add its own (late, since it started long ago) fires here.
    purge = "maintenance.purge_executions"
    sent = reader(client, "taskhub_schedule_fires_sent_total", task_type=purge)
    lag_count = reader(client, "taskhub_schedule_lag_seconds_count", task_type=purge)
    sent_before, lag_before = await sent(), await lag_count()
    config = await create_config(
        session,
        task_type=purge,
        parameters={"older_than_days": 36500},
        scheduler_type="interval",
        schedule_config={"seconds": 1},
    )
    action = f"/api/v1/tasks/configs/{config.id}/actions"
    assert (await client.post(f"{action}/start", headers=superuser_headers)).status_code == 200
    try:
        await eventually(sent, lambda n: n >= sent_before + 2, timeout=15)
    finally:
        assert (await client.post(f"{action}/stop", headers=superuser_headers)).status_code == 200
    samples = await scrape(client)
    observed = value(samples, "taskhub_schedule_lag_seconds_count", task_type=purge)
    assert observed >= lag_before + 2
    assert value(samples, "taskhub_schedule_lag_seconds_sum", task_type=purge) >= 0
    # Each fire is sent well within 2.5 s of its time (the scheduler wakes every second).
    within = value(samples, "taskhub_schedule_lag_seconds_bucket", task_type=purge, le="2.5")
    assert within == observed
