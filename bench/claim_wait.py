"""What `WAIT 1` after the fire claims costs at a 10,000-schedule boundary (REDIS_CLAIM_REPLICAS,
1 with Sentinel): the scheduler's claim pipelines for 10,000 fires (1,000 a pipeline, as
backend/scheduler/source.py batches them), on a Redis master with one replica, with and
without the WAIT that ends each pipeline.

It starts its own master and replica (the installed `redis-server`, free local ports), so the
shared Redis is untouched. The variants alternate within each round. `python -m
bench.claim_wait` prints the markdown section; `BENCH_CLAIM_N` and `BENCH_CLAIM_ROUNDS`
change its size.
"""

import asyncio
import os
import socket
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from bench import common

os.environ.update(common.isolated_env("claimwait"))  # before backend reads its settings

from backend.scheduler.source import CLAIM_BATCH_SIZE
from backend.services.redis import scheduler as schedule_state
from backend.services.redis.keys import create_client

N = int(os.environ.get("BENCH_CLAIM_N", "10000"))
ROUNDS = int(os.environ.get("BENCH_CLAIM_ROUNDS", "5"))
GENERATION = 1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _server(port: int, folder: str, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", folder,
         "--save", "", "--appendonly", "no", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def _boundary(redis: Redis, fire: datetime, *, replicas: int) -> float:
    """Seconds to claim N fires due at `fire`, in pipelines of CLAIM_BATCH_SIZE."""
    ids = [schedule_state.schedule_id(config_id, GENERATION, fire) for config_id in range(N)]
    started = time.perf_counter()
    for start in range(0, N, CLAIM_BATCH_SIZE):
        claims = await schedule_state.claim_fires(
            redis, ids[start : start + CLAIM_BATCH_SIZE], owner="bench",
            lease_seconds=10, replicas=replicas, wait_ms=1000,
        )  # fmt: skip
        assert all(claim.outcome == "ok" for claim in claims), claims[:3]
    return time.perf_counter() - started


async def run() -> str:
    master_port, replica_port = _free_port(), _free_port()
    with tempfile.TemporaryDirectory() as folder:
        servers = [
            _server(master_port, folder),
            _server(replica_port, folder, "--replicaof", "127.0.0.1", str(master_port)),
        ]
        redis = create_client(f"redis://127.0.0.1:{master_port}/0")
        try:
            await common.wait_for(lambda: _replicas_up(redis), timeout=30, what="the replica")
            async with redis.pipeline(transaction=False) as pipe:
                state = schedule_state.ScheduleState("active", generation=GENERATION)
                for config_id in range(N):
                    schedule_state.queue_state(pipe, config_id, state)
                await pipe.execute()
            times: dict[int, list[float]] = {0: [], 1: []}
            fire = datetime(2031, 1, 1, tzinfo=UTC)
            for _ in range(ROUNDS):
                for replicas in (0, 1):
                    fire += timedelta(minutes=1)  # fresh claims each time
                    times[replicas].append(await _boundary(redis, fire, replicas=replicas))
        finally:
            await redis.aclose()
            for server in servers:
                server.terminate()
                server.wait(10)
    return _render(times)


async def _replicas_up(redis: Redis) -> bool:
    try:
        info = await redis.info("replication")
    except RedisConnectionError:  # the master is still starting
        return False
    return int(info.get("connected_slaves", 0)) >= 1


def _render(times: dict[int, list[float]]) -> str:
    without, with_wait = statistics.median(times[0]), statistics.median(times[1])
    per_batch = (with_wait - without) / max(1, N // CLAIM_BATCH_SIZE) * 1000
    return "\n".join([
        "## Fire claims with WAIT for a replica (`REDIS_CLAIM_REPLICAS`)",
        "",
        f"{N:,} fires of one boundary claimed in pipelines of {CLAIM_BATCH_SIZE:,} on a Redis "
        f"master with one replica (both local), median of {ROUNDS} rounds, the variants "
        "alternating:",
        "",
        "| claims | time for the boundary's claims | per pipeline |",
        "| --- | --- | --- |",
        f"| no WAIT (`REDIS_CLAIM_REPLICAS=0`) | {without * 1000:.0f} ms | "
        f"{without / max(1, N // CLAIM_BATCH_SIZE) * 1000:.1f} ms |",
        f"| `WAIT 1 1000` after each pipeline (`REDIS_CLAIM_REPLICAS=1`) | "
        f"{with_wait * 1000:.0f} ms | {with_wait / max(1, N // CLAIM_BATCH_SIZE) * 1000:.1f} ms |",
        "",
        f"WAIT adds {(with_wait - without) * 1000:.0f} ms to the boundary "
        f"({(with_wait / without - 1) * 100:+.0f} %; {per_batch:.1f} ms a pipeline: one "
        "replication round trip each). The claims are the first step of a boundary's sends, "
        "so the last fire reaches RabbitMQ about that much later; a replica farther away adds "
        "its round trip per 1,000 fires.",
    ])  # fmt: skip


if __name__ == "__main__":
    print(asyncio.run(run()))
