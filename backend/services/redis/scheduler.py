"""The `scheduler` store: each config's schedule state and its queued fire entries.

Keys (all on the configured prefix):
- `schedule_state:{id}` hash: status, next_run_at, generation, anchor, plan (JSON), note,
  fired (scheduled fires sent since the schedule was started, for `max_runs`)
- `schedule_status:{status}` set of config ids per status other than `inactive` (which is
  the absence of a set membership), so listings filter by status without reading every hash
- `schedule:data:{schedule_id}` the entry: a taskiq ScheduledTask as JSON
- `schedule:due` sorted set schedule_id -> fire time, read by the scheduler each second
- `schedule:config:{id}` sorted set of that config's queued schedule ids -> fire time
- `schedule_claim:{id}:{fire_ts}` the SET NX claim a scheduler replica takes before sending;
  its value is `<claimer>|<batch>|<lease end, ms>` (Redis's clock), replaced by
  `sent|<claimer>` once RabbitMQ has the message (`fired|<claimer>` once its `fired` event
  is written); a claim still unsent past its lease (its claimer died between claim and
  publish) is taken over by the next replica that tries the fire

A schedule id is `{config_id}:{generation}:{fire_ts_ms}`: a new generation on every action
makes entries still held in a scheduler's memory stale, so they are never sent.
"""

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from backend.services.redis.keys import key
from backend.value_sets import SCHEDULE_STATUSES, ScheduleStatus

logger = logging.getLogger(__name__)

INDEXED_STATUSES: tuple[ScheduleStatus, ...] = ("active", "paused", "completed")
CLAIM_TTL_SECONDS = 24 * 3600
SENT = "sent|"  # prefixes a claim's value once its message is in RabbitMQ
# Replaces SENT once the fire's `fired` event is written: by a catch-up (reconcile, or
# another replica's after_fire) for its sender, whose own after_fire then must not write it
# again; or by the sender's after_fire, which so does not write it twice when run again.
RECORDED = "fired|"


def state_key(config_id: int) -> str:
    return key("schedule_state", config_id)


def status_set_key(status: str) -> str:
    return key("schedule_status", status)


def source_prefix() -> str:
    return key("schedule")


def data_key(schedule_id: str) -> str:
    return f"{source_prefix()}:data:{schedule_id}"


def due_key() -> str:
    return f"{source_prefix()}:due"


def config_entries_key(config_id: int) -> str:
    return f"{source_prefix()}:config:{config_id}"


def claim_key(config_id: int, fire_ms: int) -> str:
    return key("schedule_claim", config_id, fire_ms)


def late_checks_key() -> str:
    return key("schedule_late")


def reconcile_lock_key() -> str:
    return key("schedule_reconcile_lock")


def action_lock_key(config_id: int) -> str:
    return key("schedule_lock", config_id)


def schedule_id(config_id: int, generation: int, fire_at: datetime) -> str:
    return f"{config_id}:{generation}:{to_ms(fire_at)}"


def parse_schedule_id(value: str) -> tuple[int, int, int]:
    config_id, generation, fire_ms = value.split(":")
    return int(config_id), int(generation), int(fire_ms)


def to_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def from_ms(value: float) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)


@dataclass(frozen=True)
class ScheduleState:
    status: ScheduleStatus = "inactive"
    next_run_at: datetime | None = None
    generation: int = 0
    anchor: datetime | None = None
    plan: dict[str, Any] | None = None
    note: str | None = None  # the last action's note (or a pause on failure's), until the next
    fired: int = 0  # scheduled fires sent since the last start (counted with their `fired` event)

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> "ScheduleState":
        if not raw:
            return cls()
        status = raw.get("status", "inactive")
        if status not in SCHEDULE_STATUSES:
            raise ValueError(f"unknown schedule status {status!r} in Redis")
        return cls(
            status=status,  # type: ignore[arg-type]  # checked against SCHEDULE_STATUSES above
            next_run_at=_parse_time(raw.get("next_run_at")),
            generation=int(raw.get("generation", 0)),
            anchor=_parse_time(raw.get("anchor")),
            plan=json.loads(raw["plan"]) if raw.get("plan") else None,
            note=raw.get("note") or None,
            fired=int(raw.get("fired") or 0),
        )

    def to_hash(self) -> dict[str, str]:
        return {
            "status": self.status,
            "next_run_at": self.next_run_at.isoformat() if self.next_run_at else "",
            "generation": str(self.generation),
            "anchor": self.anchor.isoformat() if self.anchor else "",
            "plan": json.dumps(self.plan) if self.plan is not None else "",
            "note": self.note or "",
            "fired": str(self.fired),
        }


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


# The client decodes responses (str, never bytes); redis-py's annotations cover both, so the
# few reads here say what they return once, with a cast.


async def read_state(redis: Redis | Pipeline, config_id: int) -> ScheduleState:
    """Also inside a WATCHed pipeline before MULTI, where commands run at once."""
    fields = cast(dict[str, str], await redis.hgetall(state_key(config_id)))
    return ScheduleState.from_hash(fields)


async def read_states(redis: Redis, config_ids: list[int]) -> dict[int, ScheduleState]:
    """Live states of many configs in one round trip."""
    if not config_ids:
        return {}
    async with redis.pipeline(transaction=False) as pipe:
        for config_id in config_ids:
            pipe.hgetall(state_key(config_id))
        raws = await pipe.execute()
    return {cid: ScheduleState.from_hash(raw) for cid, raw in zip(config_ids, raws, strict=True)}


class ScheduleView(NamedTuple):
    """What a listing shows of a schedule's state."""

    status: ScheduleStatus
    next_run_at: datetime | None
    note: str | None
    fired: int = 0


_VIEW_FIELDS = ("status", "next_run_at", "note", "fired")
# KEYS: state hashes. Flat: the _VIEW_FIELDS of each (nil where unset).
_VIEWS = """
local out = {}
for _, key in ipairs(KEYS) do
  local fields = redis.call('HMGET', key, 'status', 'next_run_at', 'note', 'fired')
  for j = 1, 4 do out[#out + 1] = fields[j] end
end
return out
"""


async def read_views(redis: Redis, config_ids: list[int]) -> dict[int, ScheduleView]:
    """The listed part of many configs' states in one call: three fields each, not the
    whole hash (its plan is most of it)."""
    if not config_ids:
        return {}
    script = redis.register_script(_VIEWS)
    flat = await script(keys=[state_key(config_id) for config_id in config_ids])
    size = len(_VIEW_FIELDS)
    views = {}
    for i, config_id in enumerate(config_ids):
        status, next_run, note, fired = flat[size * i : size * (i + 1)]
        status = status or "inactive"
        if status not in SCHEDULE_STATUSES:
            raise ValueError(f"unknown schedule status {status!r} in Redis")
        views[config_id] = ScheduleView(
            status, _parse_time(next_run), note or None, int(fired or 0)
        )
    return views


def queue_state(pipe: Pipeline, config_id: int, state: ScheduleState) -> None:
    """Write the state hash and move the id into its status set, in the caller's pipeline.

    The hash stays for an inactive config: its generation must keep counting up."""
    pipe.hset(state_key(config_id), mapping=cast(Mapping[Any, Any], state.to_hash()))
    for status in INDEXED_STATUSES:
        if status == state.status:
            pipe.sadd(status_set_key(status), config_id)
        else:
            pipe.srem(status_set_key(status), config_id)


def queue_forget(pipe: Pipeline, config_id: int) -> None:
    pipe.delete(state_key(config_id))
    for status in INDEXED_STATUSES:
        pipe.srem(status_set_key(status), config_id)


def queue_entry(
    pipe: Pipeline, config_id: int, entry_id: str, fire_at: datetime, data: str
) -> None:
    pipe.set(data_key(entry_id), data)
    pipe.zadd(due_key(), {entry_id: to_ms(fire_at)})
    pipe.zadd(config_entries_key(config_id), {entry_id: to_ms(fire_at)})


def queue_entry_removal(pipe: Pipeline, config_id: int, entry_id: str) -> None:
    pipe.delete(data_key(entry_id))
    pipe.zrem(due_key(), entry_id)
    pipe.zrem(config_entries_key(config_id), entry_id)


async def queued_entries(redis: Redis | Pipeline, config_id: int) -> list[tuple[str, datetime]]:
    """The config's queued entries, oldest fire first."""
    rows = cast(
        list[tuple[str, float]],
        await redis.zrange(config_entries_key(config_id), 0, -1, withscores=True),
    )
    return [(entry_id, from_ms(score)) for entry_id, score in rows]


async def queued_ids(redis: Redis | Pipeline, config_id: int) -> list[str]:
    return cast(list[str], await redis.zrange(config_entries_key(config_id), 0, -1))


async def due_ids(redis: Redis, *, start: datetime, end: datetime) -> list[str]:
    """Ids of the entries whose fire time lies in [start, end]."""
    return cast(list[str], await redis.zrangebyscore(due_key(), to_ms(start), to_ms(end)))


async def entries_data(redis: Redis, ids: list[str]) -> dict[str, str]:
    """Serialized entries by id; an id whose entry is gone is left out."""
    if not ids:
        return {}
    found = cast(list[str | None], await redis.mget([data_key(i) for i in ids]))
    return {i: data for i, data in zip(ids, found, strict=True) if data}


# KEYS: per fire, its config's state and its claim. ARGV: ttl, owner, lease ms, attempt,
# then each fire's generation. Returns {outcome, lease ms left} per fire, flattened. One
# script for a batch (one command, one reply, rather than one of each a fire: a burst's
# claims cost a third as much CPU); each claim as it was on its own. The lease is on Redis's
# clock, the one clock every replica shares. The attempt names the batch: a claim already
# holding it was taken by this very batch, run again after its reply was lost (a dropped
# connection, a failover), so it is this batch's, not a send of this replica under way.
_CLAIM = """
local ttl, owner, lease, attempt = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local own_prefix = owner .. '|'
local batch_prefix = own_prefix .. attempt .. '|'
local mine = batch_prefix .. (now + lease)
local claimed = {}  -- claims this run took: the same fire twice in a batch is sent once

local function claim(state_key, claim_key, generation)
  local state = redis.call('HMGET', state_key, 'status', 'generation')
  if state[1] ~= 'active' then return 'inactive', 0 end
  if state[2] ~= generation then return 'stale', 0 end
  if redis.call('SET', claim_key, mine, 'NX', 'EX', ttl) then
    claimed[claim_key] = true
    return 'ok', 0
  end
  local held = redis.call('GET', claim_key)
  if string.find(held, '^sent|') or string.find(held, '^fired|') then return 'sent', 0 end
  local lease_end = tonumber(string.match(held, '|(%d+)$'))
  if lease_end == nil then return 'held', lease end  -- no lease: never taken over
  -- This batch's own claim, from the run whose reply was lost: its lease starts again.
  if string.sub(held, 1, #batch_prefix) == batch_prefix and not claimed[claim_key] then
    redis.call('SET', claim_key, mine, 'KEEPTTL')
    claimed[claim_key] = true
    return 'ok', 0
  end
  -- This replica's own send, still under way (a slow burst): never taken over by itself.
  if string.sub(held, 1, #own_prefix) == own_prefix then
    return 'held', math.max(lease_end - now, lease)
  end
  if lease_end > now then return 'held', lease_end - now end
  redis.call('SET', claim_key, mine, 'KEEPTTL')
  claimed[claim_key] = true
  return 'taken_over', 0
end

local found = {}
for i = 1, #KEYS / 2 do
  local outcome, left = claim(KEYS[2 * i - 1], KEYS[2 * i], ARGV[4 + i])
  found[2 * i - 1] = outcome
  found[2 * i] = left
end
return found
"""

ClaimOutcome = Literal["ok", "taken_over", "inactive", "stale", "sent", "held"]


class Claim(NamedTuple):
    """What a claim attempt found: `ok` (claimed), `taken_over` (claimed from a replica whose
    lease ran out unsent), `inactive` / `stale` (not to be sent), `sent` (another replica
    sent it), `held` (another replica is sending it, for `lease_left` more seconds)."""

    outcome: ClaimOutcome
    lease_left: float = 0.0


async def claim_fires(
    redis: Redis,
    entry_ids: list[str],
    *,
    owner: str,
    lease_seconds: float,
    attempt: str | None = None,
    replicas: int = 0,
    wait_ms: int = 1000,
) -> list[Claim]:
    """Atomically check each entry is current and claim its fire for `lease_seconds`.

    `attempt` names this batch among the owner's (the same on each try of it; by default a
    name of this call's own): a try again after a lost reply then wins the claims the first
    try took, rather than find them held by this owner.

    One round trip for many entries; each claim is atomic on its own. With `replicas`, the
    same round trip ends with `WAIT replicas wait_ms` (on the same connection, so it covers
    these claims): a claim acknowledged by a replica survives a failover, so no replica can
    claim the fire again on the promoted one. Fewer acknowledgements within `wait_ms` (a
    replica down) are logged and the fires sent all the same: a scheduler must not stop
    because a replica did."""
    if not entry_ids:
        return []
    script = redis.register_script(_CLAIM)
    lease_ms = max(1, round(lease_seconds * 1000))
    attempt = attempt or uuid.uuid4().hex[:12]
    keys: list[str] = []
    generations: list[int] = []
    for entry_id in entry_ids:
        config_id, generation, fire_ms = parse_schedule_id(entry_id)
        keys += (state_key(config_id), claim_key(config_id, fire_ms))
        generations.append(generation)
    async with redis.pipeline(transaction=False) as pipe:
        await script(
            keys=keys, args=[CLAIM_TTL_SECONDS, owner, lease_ms, attempt, *generations], client=pipe
        )
        if replicas:
            pipe.execute_command("WAIT", replicas, wait_ms)
        results = await pipe.execute()
    if replicas:
        acknowledged = int(results[1])
        if acknowledged < replicas:
            logger.warning(
                "%d fire claims reached %d of %d replicas within %d ms; sending them anyway",
                len(entry_ids), acknowledged, replicas, wait_ms,
            )  # fmt: skip
    found = results[0]
    return [
        Claim(cast(ClaimOutcome, found[i]), int(found[i + 1]) / 1000)
        for i in range(0, len(found), 2)
    ]


# KEYS: the claims. ARGV: owner, the sent value, the recorded value. Returns 1 or 0 per
# claim: only a claim still this owner's is marked; one taken over while this replica was
# too slow to publish belongs to the replica that took it. A claim marked already with this
# owner's value (a mark run again after its reply was lost; a catch-up wrote `fired` since)
# answers 1 too. One script for a batch, as for the claims.
_MARK_SENT = """
local prefix = ARGV[1] .. '|'
local marked = {}
for i, claim_key in ipairs(KEYS) do
  local held = redis.call('GET', claim_key) or ''
  if held == ARGV[2] or held == ARGV[3] then
    marked[i] = 1
  elseif string.sub(held, 1, #prefix) == prefix then
    redis.call('SET', claim_key, ARGV[2], 'KEEPTTL')
    marked[i] = 1
  else
    marked[i] = 0
  end
end
return marked
"""


async def mark_sent(redis: Redis, entry_ids: list[str], *, owner: str) -> list[bool]:
    """Note on the claims that their messages reached RabbitMQ: a scheduler killed after
    this is known to have sent the fire, one killed before it is not. Per entry, whether the
    claim was still this owner's (False: another replica took it over and sends it too).
    Marking again is harmless (a retry after a lost reply): a claim marked already is True."""
    if not entry_ids:
        return []
    keys = []
    for entry_id in entry_ids:
        config_id, _, fire_ms = parse_schedule_id(entry_id)
        keys.append(claim_key(config_id, fire_ms))
    script = redis.register_script(_MARK_SENT)
    marked = await script(keys=keys, args=[owner, SENT + owner, RECORDED + owner])
    return [bool(one) for one in marked]


def is_sent(claim: str | None) -> bool:
    return claim is not None and claim.startswith((SENT, RECORDED))


def is_recorded(claim: str | None) -> bool:
    return claim is not None and claim.startswith(RECORDED)


def queue_recorded(pipe: Pipeline, config_id: int, fire_at: datetime, claim: str | None) -> None:
    """Note on a sent claim that its `fired` event is written (by a catch-up or its sender)."""
    value = RECORDED + (claim or "").removeprefix(SENT)
    pipe.set(claim_key(config_id, to_ms(fire_at)), value, xx=True, keepttl=True)


async def claim_values(
    redis: Redis | Pipeline, config_id: int, fires: list[datetime]
) -> list[str | None]:
    """Per fire: None (unclaimed), `sent|<replica>` (or `fired|<replica>`), or
    `<replica>|<batch>|<lease end>` while that replica sends it."""
    if not fires:
        return []
    keys = [claim_key(config_id, to_ms(fire)) for fire in fires]
    return cast(list[str | None], await redis.mget(keys))


_RELEASE = """
if string.sub(redis.call('GET', KEYS[1]) or '', 1, #ARGV[1] + 1) == ARGV[1] .. '|' then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


async def release_claim(redis: Redis, entry_id: str, *, owner: str) -> bool:
    """Give back a claim this owner holds (its send failed), so the fire can be sent again."""
    config_id, _, fire_ms = parse_schedule_id(entry_id)
    return bool(await redis.eval(_RELEASE, 1, claim_key(config_id, fire_ms), owner))


async def ids_with_status(redis: Redis, status: ScheduleStatus) -> set[int]:
    """Configs in `status`; for `inactive`, the configs in ANY other status (to exclude)."""
    if status == "inactive":
        found = await redis.sunion([status_set_key(s) for s in INDEXED_STATUSES])
    else:
        found = await redis.smembers(status_set_key(status))
    return {int(member) for member in found}


async def count(redis: Redis, status: ScheduleStatus) -> int:
    return await redis.scard(status_set_key(status))


def queue_late_check(pipe: Pipeline, *, task_id: str, config_id: int, due: datetime) -> None:
    """A sent fire to look at again at `due`: not recorded by then, it is late."""
    pipe.zadd(late_checks_key(), {f"{config_id}|{task_id}": to_ms(due)})


_CLAIM_LATE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
return due
"""


async def claim_late_checks(redis: Redis, *, now: datetime, limit: int) -> list[tuple[int, str]]:
    """Take the checks due by `now` (atomically: each is taken by one replica only)."""
    members = await redis.eval(_CLAIM_LATE, 1, late_checks_key(), to_ms(now), limit)  # type: ignore[misc]
    found = []
    for member in cast(list[str], members):
        config_id, task_id = member.split("|", 1)
        found.append((int(config_id), task_id))
    return found
