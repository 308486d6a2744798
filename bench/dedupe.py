"""What the worker-side dedupe costs per run: the in-flight mark with and without its attempt
claim (the `SET NX` that drops a second delivery), and the Redis memory each claim holds.

Both variants are the same `EVALSHA` with the same keys and arguments, one at a time as a
worker's runs reach the middleware; "without" is the in-flight script with the claim's lines
taken out. The variants alternate within each round, so a noisy neighbour hits both alike.

`python -m bench.dedupe` prints the markdown section; `BENCH_DEDUPE_N` and
`BENCH_DEDUPE_ROUNDS` change its size.
"""

import asyncio
import hashlib
import os
import time
import uuid

from bench import common

os.environ.update(common.isolated_env("dedupe"))  # before backend reads its settings

from backend.services.redis import timeout as live_runs
from backend.services.redis import timeout_scripts
from backend.services.redis.keys import create_client

N = int(os.environ.get("BENCH_DEDUPE_N", "5000"))
ROUNDS = int(os.environ.get("BENCH_DEDUPE_ROUNDS", "5"))
CLAIM = """if not redis.call('SET', KEYS[4], ARGV[2], 'NX', 'EX', tonumber(ARGV[5])) then
  if redis.call('GET', KEYS[4]) == 'cancelled' then return 'cancelled' end
  return 'duplicate'
end
"""


def _sha(script: str) -> str:
    return hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()


async def _marks(redis: object, sha: str, n: int) -> float:
    """Seconds per in-flight mark, over n fresh runs."""
    now = time.time()
    tag = uuid.uuid4().hex
    started = time.perf_counter()
    for i in range(n):
        task_id = f"{tag}-{i}"
        keys = [
            live_runs._run_key(task_id),
            live_runs._deadlines_key(),
            live_runs._config_key(1),
            live_runs._attempt_key(task_id, 1),
            live_runs._waiting_key(1),
        ]
        fields = ["config_id", 1, "state", "running", "attempt", 1, "deadline", now + 60]
        prefixes = [live_runs._run_prefix(), live_runs._attempt_prefix()]
        args = [task_id, now, now + 60, "allow", 120, "", *prefixes, "", *fields]
        await redis.evalsha(sha, len(keys), *keys, *args)  # type: ignore[attr-defined]
    return (time.perf_counter() - started) / n


async def measure() -> dict[str, object]:
    start = timeout_scripts.START
    assert CLAIM in start, "the in-flight script changed: update CLAIM"
    scripts = {"with": start, "without": start.replace(CLAIM, "")}
    redis = create_client(os.environ["REDIS_URL"])
    try:
        shas = {name: await redis.script_load(text) for name, text in scripts.items()}
        assert shas == {name: _sha(text) for name, text in scripts.items()}
        await _marks(redis, shas["with"], 200)  # warm-up
        per_mark: dict[str, list[float]] = {"with": [], "without": []}
        for _ in range(ROUNDS):
            for name in ("without", "with"):
                per_mark[name].append(await _marks(redis, shas[name], N))
        probe = live_runs._attempt_key("s123-1767225600000", 1)
        await redis.set(probe, time.time(), ex=86400)
        memory = await redis.memory_usage(probe)
    finally:
        await common.delete_redis_keys(os.environ["REDIS_PREFIX"])
        await redis.aclose()
    return {"per_mark": per_mark, "memory": memory}


def report(result: dict[str, object]) -> str:
    per_mark: dict[str, list[float]] = result["per_mark"]  # type: ignore[assignment]
    with_us = common.median(per_mark["with"]) * 1e6
    without_us = common.median(per_mark["without"]) * 1e6
    rounds = ", ".join(
        f"{a * 1e6:.0f}/{b * 1e6:.0f}"
        for a, b in zip(per_mark["without"], per_mark["with"], strict=True)
    )
    return "\n".join(
        [
            "## Worker-side dedupe: the cost per run",
            "",
            f"The in-flight mark (one `EVALSHA` per run, before the ack), {N:,} fresh runs one"
            f" at a time per variant, median of {ROUNDS} rounds, the variants alternating.",
            "",
            "| in-flight mark | µs per run (median) |",
            "| --- | ---: |",
            f"| without the attempt claim | {without_us:.1f} |",
            f"| with the attempt claim (`SET NX EX` in the same script) | {with_us:.1f} |",
            "",
            f"- Cost of the dedupe per run: **{with_us - without_us:+.1f} µs** of round trip"
            f" ({with_us / without_us:.2f} x the mark alone); no extra round trip. Each round"
            f" (without/with, µs): {rounds}.",
            f"- Redis memory per remembered attempt (`MEMORY USAGE` of one claim key):"
            f" **{result['memory']} bytes**, kept until `QUEUED_RUN_TTL_SECONDS` (a day) past"
            " the run's deadline: about"
            f" {int(result['memory']) * 1_000_000 / 2**20:.0f} MiB per million runs a day.",  # type: ignore[call-overload]
        ]
    )


async def run() -> str:
    """Measure and return the markdown section; raises on failure."""
    return report(await measure())


if __name__ == "__main__":
    print(asyncio.run(run()))
