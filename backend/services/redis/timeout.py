"""The `timeout` store: runs queued or in flight, with their deadlines, and each config's lock.

Keys (all under the prefix):
- `timeout:run:{task_id}`   hash: config_id, trigger, task_type, state (queued|running|
                            waiting|cancelled), queued_at, started_at, deadline, attempt
                            (epoch seconds); `cancel`: the error a cancelled run's record
                            says; `resend`: the message of a waiting run that was let go;
                            scheduled_for (ISO 8601, the nominal fire time, for the reaper)
- `timeout:deadlines`       sorted set: task ids of started runs by deadline; the reaper
                            records the ones past it as lost. Also a run cancelled before it
                            started (due at once: the reaper writes its record) and a waiting
                            run let go (due at the lease end: the reaper sends it again)
- `timeout:config:{id}`     sorted set: a config's started runs by deadline; the overlap lock
                            (entries past their deadline no longer count, so a lost run cannot
                            hold it forever)
- `timeout:attempt:{task_id}:{attempt}`  the execution claim of one attempt, taken with the
                            in-flight mark: a second delivery of that attempt (a broker
                            redelivery, a fire sent again after its scheduler died) finds it and
                            is dropped; it outlives the run by QUEUED_RUN_TTL_SECONDS, so a
                            copy still waiting in the queue after the run ended is caught too;
                            its value `cancelled` marks an attempt cancelled before it started
- `timeout:waiting:{config_id}`  hash: task_id, message: the one scheduled run that waits for
                            its config's runs in flight (`buffer_one`); let go (`promote`) by
                            the transaction that records the last of them
"""

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError

from backend.services.redis import timeout_scripts as scripts
from backend.services.redis.keys import key

QUEUED, RUNNING, WAITING = scripts.QUEUED, scripts.RUNNING, scripts.WAITING
CANCELLED = scripts.CANCELLED

# What start() made of a delivery: it runs; it is refused (overlap); it waits for the runs in
# flight (buffered); it is a second delivery of an attempt that already started (or finished)
# and must not run again (duplicate); or it was cancelled before it started.
Admission = Literal["started", "overlap", "buffered", "duplicate", "cancelled"]
# How start() treats a run of a config that has runs in flight (a scheduled first attempt's
# overlap policy; any other run is `allow`ed).
Overlap = Literal["allow", "skip", "buffer_one", "cancel_other"]
# What cancel() found: a run that had not started (queued, waiting, or between attempts:
# now it never starts, and a reaper writes its record), a running one (its worker is asked
# to stop it), one asked already, or nothing live (finished, or never known).
Cancelled = Literal["queued", "waiting", "running", "already", "gone"]


def _run_key(task_id: str) -> str:
    return key("timeout", "run", task_id)


def _deadlines_key() -> str:
    return key("timeout", "deadlines")


def _attempt_key(task_id: str, attempt: int) -> str:
    return key("timeout", "attempt", task_id, attempt)


def _config_key(config_id: int | None) -> str:
    # Runs without a config (kicked by hand outside the API) share no lock with anything.
    return key("timeout", "config", "-" if config_id is None else config_id)


def _waiting_key(config_id: int | None) -> str:
    return key("timeout", "waiting", "-" if config_id is None else config_id)


def _run_prefix() -> str:
    """What a script appends a task id to for its run key (runs it finds in a lock)."""
    return key("timeout", "run", "")


def _attempt_prefix() -> str:
    """What a script appends `{task_id}:{attempt}` to for an attempt claim."""
    return key("timeout", "attempt", "")


@dataclass(frozen=True)
class LiveRun:
    task_id: str
    config_id: int | None
    trigger: str
    state: str
    attempt: int
    task_type: str
    queued_at: datetime | None
    started_at: datetime | None
    deadline: datetime | None
    cancel: str | None = None  # set once a cancel is asked: the error its record will say
    resend: str | None = None  # a waiting run let go: its message, sent again if it is lost
    scheduled_for: datetime | None = None

    @classmethod
    def from_hash(cls, task_id: str, fields: dict[str, str]) -> "LiveRun":
        return cls(
            task_id=task_id,
            config_id=int(fields["config_id"]) if fields.get("config_id") else None,
            trigger=fields.get("trigger", "manual"),
            state=fields.get("state", QUEUED),
            attempt=int(fields.get("attempt", 0)),
            # Written when a worker starts the run; "unknown" for entries from before that.
            task_type=fields.get("task_type") or "unknown",
            queued_at=_when(fields.get("queued_at")),
            started_at=_when(fields.get("started_at")),
            deadline=_when(fields.get("deadline")),
            cancel=fields.get("cancel") or None,
            resend=fields.get("resend") or None,
            scheduled_for=(
                datetime.fromisoformat(fields["scheduled_for"])
                if fields.get("scheduled_for")
                else None
            ),
        )


def _when(epoch: str | None) -> datetime | None:
    return datetime.fromtimestamp(float(epoch), UTC) if epoch else None


async def _run_script(redis: Redis, script: str, keys: list[str], *args: str | int | float) -> Any:
    """EVALSHA (40 bytes on the hot path, not the script); EVAL loads it when Redis lacks it."""
    try:
        sha = scripts.SHA1[script]
        return await redis.evalsha(sha, len(keys), *keys, *args)  # type: ignore[misc]
    except NoScriptError:
        return await redis.eval(script, len(keys), *keys, *args)  # type: ignore[misc]


async def mark_queued(
    redis: Redis, *, task_id: str, config_id: int, trigger: str, ttl: int
) -> None:
    """Written before the run is sent, so its state can be read until a worker starts it."""
    fields: dict[str, str | int | float] = {
        "config_id": config_id,
        "trigger": trigger,
        "state": QUEUED,
        "attempt": 0,
        "queued_at": time.time(),
    }
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(_run_key(task_id), mapping=fields)  # type: ignore[arg-type]
        pipe.expire(_run_key(task_id), ttl)
        await pipe.execute()


async def forget(redis: Redis, task_id: str) -> None:
    await redis.delete(_run_key(task_id))


@dataclass(frozen=True)
class Start:
    """One attempt to mark in flight (see `start`)."""

    task_id: str
    config_id: int | None
    trigger: str
    attempt: int
    started_at: float
    deadline: float
    ttl: int
    task_type: str = ""
    scheduled_for: datetime | None = None
    overlap: Overlap = "allow"
    message: str = ""
    cancel_message: str = ""

    def call(self, now: float) -> tuple[list[str], list[str | int | float]]:
        """The START script's keys and arguments."""
        fields = {
            "config_id": "" if self.config_id is None else self.config_id,
            "trigger": self.trigger,
            "task_type": self.task_type,
            "state": RUNNING,
            "attempt": self.attempt,
            "started_at": self.started_at,
            "deadline": self.deadline,
            "scheduled_for": self.scheduled_for.isoformat() if self.scheduled_for else "",
        }
        keys = [
            _run_key(self.task_id),
            _deadlines_key(),
            _config_key(self.config_id),
            _attempt_key(self.task_id, self.attempt),
            _waiting_key(self.config_id),
        ]
        args = [
            self.task_id, now, self.deadline, self.overlap, self.ttl, self.message,
            _run_prefix(), _attempt_prefix(), self.cancel_message,
            *(item for pair in fields.items() for item in pair),
        ]  # fmt: skip
        return keys, args


async def start(redis: Redis, attempt: Start) -> Admission:
    """Mark an attempt in flight, once: a second delivery of the same task id and attempt is
    a `duplicate`, one cancelled before it started `cancelled`. While other runs of its
    config are in flight, `overlap` says what happens: `skip` refuses it (`overlap`),
    `buffer_one` keeps it (`message`, the delivery as JSON) as the one run that waits, or
    refuses it if another waits already, `cancel_other` cancels them (`cancel_message`) and
    starts it. `ttl` keeps the marks (the attempt claim too) past the deadline."""
    return (await start_many(redis, [attempt]))[0]


async def start_many(redis: Redis, attempts: Sequence[Start]) -> list[Admission]:
    """`start` for many attempts in one round trip: a worker's deliveries taken together.

    One pipeline of EVALSHA, each script atomic on its own and run in order (a copy of an
    attempt after it in the same batch is its `duplicate`); scripts Redis lacks (after a
    restart or a failover) are run again with EVAL, which loads them: they did not run."""
    now = time.time()
    calls = [attempt.call(now) for attempt in attempts]
    sha = scripts.SHA1[scripts.START]
    async with redis.pipeline(transaction=False) as pipe:
        for keys, args in calls:
            pipe.evalsha(sha, len(keys), *keys, *args)
        results: list[Any] = await pipe.execute(raise_on_error=False)
    for index, result in enumerate(results):
        if isinstance(result, NoScriptError):
            keys, args = calls[index]
            results[index] = await redis.eval(scripts.START, len(keys), *keys, *args)  # type: ignore[misc]
        elif isinstance(result, Exception):
            raise result
    return cast(list[Admission], results)


Requeued = Literal["requeued", "cancelled", "stale"]


async def requeue(
    redis: Redis,
    *,
    task_id: str,
    config_id: int | None,
    attempt: int,
    deadline: float,
    ttl: int,
) -> Requeued:
    """Between retries the run stays live (and keeps its lock) until the next attempt's start.

    `stale` when the next attempt has already started (it then owns the entry); `cancelled`
    when a cancel came while the attempt ran: the next one will not start.
    """
    keys = [
        _run_key(task_id),
        _deadlines_key(),
        _config_key(config_id),
        _attempt_key(task_id, attempt + 1),
    ]
    args: list[str | int | float] = [task_id, attempt, deadline, ttl, time.time()]
    outcome: Requeued = await _run_script(redis, scripts.REQUEUE, keys, *args)
    return outcome


async def cancel(
    redis: Redis,
    *,
    task_id: str,
    config_id: int | None,
    message: str,
    ttl: int,
    sent_fire: bool = False,
) -> Cancelled:
    """Cancel a run, atomically against its start: one not started never starts (a reaper
    records it, with `message` as its error), a running one is asked to stop (its worker
    polls `cancel_requests`). `sent_fire`: a scheduled run its scheduler has sent, which has
    no live entry until a worker starts it."""
    keys = [
        _run_key(task_id),
        _deadlines_key(),
        _waiting_key(config_id),
        _attempt_key(task_id, 1),
    ]
    fire_config = str(config_id) if sent_fire and config_id is not None else ""
    args: list[str | int | float] = [
        task_id, message, time.time(), _attempt_prefix(), ttl, fire_config,
    ]  # fmt: skip
    found: Cancelled = await _run_script(redis, scripts.CANCEL, keys, *args)
    return found


async def cancel_requests(redis: Redis, task_ids: Sequence[str]) -> dict[str, str]:
    """Of these running runs, the ones asked to cancel, with the message: one round trip."""
    async with redis.pipeline(transaction=False) as pipe:
        for task_id in task_ids:
            pipe.hget(_run_key(task_id), "cancel")
        found = await pipe.execute()
    return {task_id: text for task_id, text in zip(task_ids, found, strict=True) if text}


def queue_finish_many(pipe: Pipeline, runs: Sequence[tuple[str, int | None]]) -> None:
    """The removal of finished runs (task id, config id): a few commands for any number."""
    if not runs:
        return
    by_config: dict[int | None, list[str]] = {}
    for task_id, config_id in runs:
        by_config.setdefault(config_id, []).append(task_id)
    pipe.zrem(_deadlines_key(), *(task_id for task_id, _ in runs))
    for config_id, task_ids in by_config.items():
        pipe.zrem(_config_key(config_id), *task_ids)
    pipe.delete(*(_run_key(task_id) for task_id, _ in runs))


def queue_promote(
    pipe: Pipeline, config_ids: Iterable[int | None], *, lease_seconds: float, ttl: int
) -> None:
    """In the transaction of queue_finish_many: let each config's waiting run go if its last
    run in flight ended. The pipeline's result holds, per config, the message to send or None.

    EVAL, not EVALSHA: a script missing from Redis's cache would fail inside the transaction.
    """
    now = time.time()
    for config_id in config_ids:
        keys = [_config_key(config_id), _waiting_key(config_id), _deadlines_key()]
        pipe.eval(scripts.PROMOTE, len(keys), *keys, now, now + lease_seconds, _run_prefix(), ttl)


async def claim_due(redis: Redis, *, lease_seconds: float, limit: int = 100) -> list[LiveRun]:
    """Claim started runs past their deadline for this reaper, for `lease_seconds`."""
    now = time.time()
    keys = [_deadlines_key()]
    task_ids = await _run_script(redis, scripts.CLAIM, keys, now, now + lease_seconds, limit)
    if not task_ids:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for task_id in task_ids:
            pipe.hgetall(_run_key(task_id))
        hashes = await pipe.execute()
    claimed = list(zip(task_ids, hashes, strict=True))
    # A run that finished between the claim and this read left nothing to record.
    gone = [task_id for task_id, fields in claimed if not fields]
    if gone:
        await redis.zrem(_deadlines_key(), *gone)
    return [LiveRun.from_hash(task_id, fields) for task_id, fields in claimed if fields]


async def get(redis: Redis, task_id: str) -> LiveRun | None:
    fields: dict[str, str] = await redis.hgetall(_run_key(task_id))  # type: ignore[assignment]
    return LiveRun.from_hash(task_id, fields) if fields else None


async def seen_among(redis: Redis, task_ids: Sequence[str]) -> tuple[set[str], set[str]]:
    """Of the runs, those queued or in flight, and those whose first attempt a worker has
    taken (started, finished or refused): one round trip for any number."""
    if not task_ids:
        return set(), set()
    async with redis.pipeline(transaction=False) as pipe:
        for task_id in task_ids:
            pipe.exists(_run_key(task_id))
            pipe.exists(_attempt_key(task_id, 1))
        found = await pipe.execute()
    live = {task_id for task_id, exists in zip(task_ids, found[::2], strict=True) if exists}
    taken = {task_id for task_id, exists in zip(task_ids, found[1::2], strict=True) if exists}
    return live, taken


async def count_in_flight(redis: Redis) -> int:
    return int(await redis.zcard(_deadlines_key()))


async def deadlines(redis: Redis, *, limit: int = 100) -> list[tuple[str, datetime]]:
    """The runs in flight with their deadlines, earliest first."""
    found = cast(
        list[tuple[str, float]],
        await redis.zrange(_deadlines_key(), 0, limit - 1, withscores=True),
    )
    return [(task_id, datetime.fromtimestamp(score, UTC)) for task_id, score in found]
