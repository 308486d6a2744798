"""The chaos soak's verdict: from the sink, the database and the history, the counts of one
table and the violations of Taskhub's promises (none expected)."""

import itertools
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.models import TaskExecution
from backend.services import schedule_entries
from backend.services.redis import scheduler as schedule_state
from backend.services.redis.keys import key
from tests.support.http_sink import HttpSink
from tests.support.soak import Seen


@dataclass
class Report:
    counts: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    def table(self) -> str:
        width = max(map(len, self.counts))
        lines = [f"| {'measure':<{width}} | count |", f"| {'-' * width} | ----- |"]
        lines += [f"| {name:<{width}} | {value:>5} |" for name, value in self.counts.items()]
        return "\n".join(lines)


async def _records(
    sessionmaker: async_sessionmaker[AsyncSession], config_ids: list[int]
) -> list[tuple[str, int | None, str | None]]:
    async with sessionmaker() as session:
        query = select(
            TaskExecution.task_id, TaskExecution.config_id, TaskExecution.error_message
        ).where(TaskExecution.config_id.in_(config_ids))
        return [tuple(row) for row in (await session.execute(query)).all()]  # type: ignore[misc]


async def _claims(redis: Redis, config_id: int) -> dict[datetime, bool]:
    """Each fire a replica claimed: whether it was marked sent (its message in RabbitMQ)."""
    found: dict[datetime, bool] = {}
    async for name in redis.scan_iter(match=key("schedule_claim", config_id, "*"), count=1000):
        value = await redis.get(name)
        fire = schedule_state.from_ms(int(name.rsplit(":", 1)[1]))
        found[fire] = schedule_state.is_sent(value)
    return found


def _missed_ranges(events: set[str]) -> list[tuple[datetime, datetime]]:
    parsed = [json.loads(event) for event in events]
    return [
        (datetime.fromisoformat(e["first"]), datetime.fromisoformat(e["last"]))
        for e in parsed
        if e["event"] == "missed"
    ]


def _events(seen: Seen, name: str) -> int:
    return sum(
        json.loads(event)["event"] == name for events in seen.events.values() for event in events
    )


@dataclass
class Fires:
    sent: int = 0
    missed: int = 0
    unaccounted: int = 0


async def _check_fires(
    report: Report, fires: Fires, *, redis: Redis, seen: Seen, recorded: dict[str, int],
    config_id: int, every: float,
) -> None:  # fmt: skip
    """Each sent fire has one record; each nominal fire before the chaos ended (between two
    known ones) ran or is covered by a `missed` event; no claimed fire was silently dropped."""
    claims = await _claims(redis, config_id)
    ranges = _missed_ranges(seen.events.get(config_id, set()))
    cutoff = datetime.fromtimestamp(seen.chaos_ended_at, UTC)
    step = timedelta(seconds=every)
    ran = {
        parsed[1] for task_id in recorded
        if (parsed := schedule_entries.parse_fire_task_id(task_id)) and parsed[0] == config_id
    }  # fmt: skip
    for fire, was_sent in claims.items():
        count = recorded.get(schedule_entries.fire_task_id(config_id, fire), 0)
        fires.sent += was_sent
        if was_sent and count != 1:
            report.violations.append(f"config {config_id}: fire {fire} sent, recorded {count}x")
        missed = any(first <= fire <= last for first, last in ranges)
        if not was_sent and not count and fire <= cutoff and not missed:
            fires.unaccounted += 1
            report.violations.append(f"config {config_id}: fire {fire} claimed, never sent")
    for earlier, later in itertools.pairwise(sorted(ran | set(claims))):
        gap = earlier + step
        while gap < later - step / 2 and gap <= cutoff:
            if any(first <= gap <= last for first, last in ranges):
                fires.missed += 1
            else:
                fires.unaccounted += 1
                report.violations.append(f"config {config_id}: fire {gap} neither ran nor missed")
            gap += step


async def build(
    seen: Seen, *, sink: HttpSink, redis: Redis, sessionmaker: async_sessionmaker[AsyncSession]
) -> Report:
    report = Report()
    records = await _records(sessionmaker, [*seen.config_ids, seen.manual_id])
    recorded = Counter(task_id for task_id, _, _ in records)
    executed = Counter({path.removeprefix("/run/"): n for path, n in sink.hits.items()})
    twice = sorted(task_id for task_id, n in executed.items() if n > 1)
    report.violations += [f"{task_id} executed {executed[task_id]} times" for task_id in twice]
    report.violations += [f"{t} recorded {n} times" for t, n in recorded.items() if n > 1]
    report.violations += [f"{t} executed, never recorded" for t in executed if t not in recorded]

    fires = Fires()
    for config_id, every in seen.config_ids.items():
        await _check_fires(
            report, fires, redis=redis, seen=seen, recorded=recorded, config_id=config_id,
            every=every,
        )  # fmt: skip

    accepted = [task_id for code, task_id in seen.run_now if code == 202 and task_id]
    report.violations += [
        f"run now {t} recorded {recorded.get(t, 0)}x" for t in accepted if recorded.get(t) != 1
    ]
    refused = [code for code, _ in seen.run_now if code != 202]
    report.violations += [f"run now answered {code}" for code in refused if code != 503]
    if seen.in_flight_at_end:
        report.violations.append(f"{seen.in_flight_at_end} runs still in flight at the end")
        report.violations += seen.left_in_flight
    lost = sum((error or "").startswith("WorkerLost") for _, _, error in records)
    report.counts = {
        "configs (interval 1-3 s)": len(seen.config_ids),
        "scheduler kills": seen.kills["scheduler"],
        "worker kills": seen.kills["worker"],
        "fires sent": fires.sent,
        "fires missed (accounted)": fires.missed,
        "fires unaccounted": fires.unaccounted,
        "run now accepted": len(accepted),
        "run now refused (503)": len(refused),
        "records": len(records),
        "records WorkerLost (killed mid-run)": lost,
        "executions (sink calls)": sum(executed.values()),
        "task ids executed twice": len(twice),
        "copies dropped as duplicate": _events(seen, "duplicate"),
        "in flight at the end": seen.in_flight_at_end,
    }
    return report
