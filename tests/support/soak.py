"""The chaos soak's driver: an API, two workers and three scheduler replicas on queues of
their own; 20 interval configs (1-3 s) and a run-now loop, all calling the HTTP sink with
their task id (tests/support/sink_task.py); a chaos loop SIGKILLs a random worker or
scheduler every 5-10 s and restarts it. Then it settles, stops the schedules, waits for the
runs in flight, and hands what it saw to tests/support/soak_report.py."""

import asyncio
import functools
import json
import random
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aio_pika
import httpx
from redis.asyncio import Redis

from backend.services.redis import history
from backend.services.redis import scheduler as schedule_state
from backend.services.redis import timeout as live_runs
from tests.support import processes, sink_task
from tests.support.api_process import ApiServer, start_api
from tests.support.http_sink import HttpSink
from tests.support.worker_process import AMQP_URL, WORKER_ENV, Worker

CONFIGS = 20
GRACE_SECONDS = 6  # MISFIRE_GRACE_SECONDS: a fire unsent this long is accounted missed
RUN_TIMEOUT_SECONDS = 5
ENV = {
    **WORKER_ENV,
    "MISFIRE_GRACE_SECONDS": str(GRACE_SECONDS),
    "SCHEDULE_CLAIM_LEASE_SECONDS": "2",
    "RECONCILE_INTERVAL_SECONDS": "2",
    # A reaper killed with lost runs claimed holds them this long before another reaps them.
    "REAPER_LEASE_SECONDS": "3",
}
SETTLE_SECONDS = GRACE_SECONDS + 2 + 2 + 2  # grace + reconcile + lease + margin


@dataclass
class Seen:
    """What the soak collected while it ran, for the report."""

    config_ids: dict[int, int] = field(default_factory=dict)  # scheduled config -> interval s
    manual_id: int = 0
    run_now: list[tuple[int, str | None]] = field(default_factory=list)  # (status, task id)
    events: dict[int, set[str]] = field(default_factory=dict)  # config -> history events JSON
    kills: dict[str, int] = field(default_factory=lambda: {"worker": 0, "scheduler": 0})
    chaos_ended_at: float = 0.0  # epoch seconds
    in_flight_at_end: int = 0
    left_in_flight: list[str] = field(default_factory=list)


class Soak:
    def __init__(self, *, seconds: float, redis: Redis, sink: HttpSink, logs: Path,
                 headers: dict[str, str], queue: str) -> None:  # fmt: skip
        self.seconds, self.redis, self.sink, self.logs = seconds, redis, sink, logs
        self.headers = headers
        self.env = {**ENV, "RABBITMQ_QUEUE": queue, "RABBITMQ_EXCHANGE": queue}
        self.seen = Seen()
        self.api: ApiServer | None = None
        self.workers: list[Worker] = []
        self.schedulers: list[subprocess.Popen] = []
        self._starts = 0

    async def run(self) -> Seen:
        loops: list[asyncio.Task[None]] = []
        try:
            await self._start()
            await self._configs()
            run_now, collect = (asyncio.create_task(self._run_now()),
                                asyncio.create_task(self._collect()))  # fmt: skip
            loops = [run_now, collect]
            await self._chaos(until=time.monotonic() + self.seconds)
            self.seen.chaos_ended_at = time.time()
            run_now.cancel()
            self._revive()
            await self._settle(timeout=60)
            await self._stop_schedules()
            await self._wait_for_the_queue(timeout=120)
            await self._wait_for_runs_in_flight(timeout=RUN_TIMEOUT_SECONDS + 30)
        finally:
            for loop in loops:
                loop.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await self._stop()
        await self._collect_once()
        return self.seen

    async def _settle(self, *, timeout: float) -> None:
        """Every fire the chaos left unsent gets sent (a claim of a killed replica is taken
        over after its lease) or accounted missed (by reconcile, past the grace): wait the
        time that takes, then until no queued entry is older than it, as long as a loaded
        machine needs (a slow reconcile pass outlasted a fixed wait). Still unsettled at
        `timeout`, the report names the fires."""
        await asyncio.sleep(SETTLE_SECONDS)
        deadline = time.monotonic() + timeout
        while await self._unsettled_fires():
            if time.monotonic() > deadline:
                return  # the report names them
            await asyncio.sleep(0.5)

    async def _unsettled_fires(self) -> int:
        oldest = datetime.now(UTC) - timedelta(seconds=SETTLE_SECONDS)
        count = 0
        for config_id in self.seen.config_ids:
            entries = await schedule_state.queued_entries(self.redis, config_id)
            count += sum(1 for _, fire in entries if fire < oldest)
        return count

    async def _wait_for_the_queue(self, *, timeout: float) -> None:
        """On a loaded machine the workers fall behind the 12 fires a second: let them drain
        the queue (a sent fire still queued is neither lost nor recorded yet)."""
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            queue = self.env["RABBITMQ_QUEUE"]

            async def waiting() -> int:
                declared = await channel.declare_queue(queue, passive=True)
                return declared.declaration_result.message_count or 0

            await processes.eventually(waiting, lambda n: n == 0, timeout=timeout, interval=1)

    async def _wait_for_runs_in_flight(self, *, timeout: float) -> None:
        """Runs of killed workers are reaped after their deadline (timeout + grace); what is
        still in flight at `timeout` is kept for the report, with its deadline."""
        deadline = time.monotonic() + timeout
        while True:
            left = await live_runs.count_in_flight(self.redis)
            if not left or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        self.seen.in_flight_at_end = left
        for task_id, due in await live_runs.deadlines(self.redis) if left else []:
            run = await live_runs.get(self.redis, task_id)
            self.seen.left_in_flight.append(f"in flight at the end: {task_id}, due {due}: {run}")

    async def _start(self) -> None:
        """Everything at once (on a loaded machine each process takes seconds to start)."""
        self.workers = [
            Worker(self.logs / f"worker-{n}.log", env=self.env, modules=(sink_task.__name__,))
            for n in range(2)
        ]
        self.schedulers = [self._scheduler() for _ in range(3)]
        api = asyncio.create_task(start_api("tests.support.sink_task_app:app", **self.env))
        await asyncio.gather(
            *(worker.start(timeout=90) for worker in self.workers),
            *(processes.scheduler_ready(scheduler, timeout=90) for scheduler in self.schedulers),
            api,
        )
        self.api = api.result()

    def _scheduler(self) -> subprocess.Popen:
        self._starts += 1
        return processes.start_scheduler(f"soak-scheduler-{self._starts}", **self.env)

    async def _configs(self) -> None:
        assert self.api is not None
        async with httpx.AsyncClient(base_url=self.api.base_url, timeout=30) as client:
            for n in range(CONFIGS):
                every = 1 + n % 3
                body = {
                    "name": f"soak-{time.time_ns()}-{n}", "task_type": sink_task.NAME,
                    "scheduler_type": "interval", "schedule_config": {"seconds": every},
                    "parameters": {"url": self.sink.url("/run")}, "overlap_policy": "allow",
                    "timeout_seconds": RUN_TIMEOUT_SECONDS,
                }  # fmt: skip
                created = await client.post(
                    "/api/v1/tasks/configs?auto_start=true", json=body, headers=self.headers
                )
                assert created.status_code == 201, created.text
                self.seen.config_ids[created.json()["id"]] = every
            body = {"name": f"soak-now-{time.time_ns()}", "task_type": sink_task.NAME,
                    "scheduler_type": "manual", "schedule_config": {},
                    "parameters": {"url": self.sink.url("/run")},
                    "timeout_seconds": RUN_TIMEOUT_SECONDS}  # fmt: skip
            created = await client.post("/api/v1/tasks/configs", json=body, headers=self.headers)
            assert created.status_code == 201, created.text
            self.seen.manual_id = created.json()["id"]

    async def _run_now(self) -> None:
        assert self.api is not None
        url = f"/api/v1/tasks/configs/{self.seen.manual_id}/run"
        async with httpx.AsyncClient(base_url=self.api.base_url, timeout=30) as client:
            while True:
                response = await client.post(url, headers=self.headers)
                task_id = response.json().get("task_id") if response.status_code == 202 else None
                self.seen.run_now.append((response.status_code, task_id))
                await asyncio.sleep(0.3)

    async def _chaos(self, *, until: float) -> None:
        chaos = random.Random(17)  # reproducible chaos
        while (left := until - time.monotonic()) > 0:
            await asyncio.sleep(min(left, chaos.uniform(5, 10)))
            if time.monotonic() >= until:
                return
            victim = chaos.randrange(len(self.workers) + len(self.schedulers))
            if victim < len(self.workers):
                self.workers[victim].kill()
                self.seen.kills["worker"] += 1
                await asyncio.sleep(0.5)
                self.workers[victim].spawn()
            else:
                index = victim - len(self.workers)
                processes.stop(self.schedulers[index], kill=True)
                self.seen.kills["scheduler"] += 1
                await asyncio.sleep(0.5)
                self.schedulers[index] = self._scheduler()

    def _revive(self) -> None:
        """Every process up for the settling phase (none is left dead by the chaos)."""
        for worker in self.workers:
            if worker.process is None or worker.process.poll() is not None:
                worker.spawn()
        for index, scheduler in enumerate(self.schedulers):
            if scheduler.poll() is not None:
                self.schedulers[index] = self._scheduler()

    async def _collect(self) -> None:
        """History is capped per config: read it every 2 s and keep every event seen."""
        while True:
            await self._collect_once()
            await asyncio.sleep(2)

    async def _collect_once(self) -> None:
        for config_id in [*self.seen.config_ids, self.seen.manual_id]:
            items, _ = await history.read(self.redis, config_id, limit=100)
            seen = self.seen.events.setdefault(config_id, set())
            seen.update(json.dumps(item, sort_keys=True) for item in items)

    async def _stop_schedules(self) -> None:
        assert self.api is not None
        async with httpx.AsyncClient(base_url=self.api.base_url, timeout=30) as client:
            for config_id in self.seen.config_ids:
                url = f"/api/v1/tasks/configs/{config_id}/actions/stop"
                stopped = await client.post(url, headers=self.headers)
                assert stopped.status_code == 200, stopped.text

    async def _stop(self) -> None:
        """All at once: each process may take seconds to shut down."""
        stops = [functools.partial(processes.stop, scheduler) for scheduler in self.schedulers]
        stops += [worker.stop for worker in self.workers]
        if self.api is not None:
            stops.append(functools.partial(processes.stop, self.api.process))
        await asyncio.gather(*(asyncio.to_thread(stop) for stop in stops))
