"""API under load: `GET /tasks/configs?limit=100` over N configs and `GET /users/me`.

A uvicorn process (one worker, as `make run` starts it) serves the API; CLIENTS concurrent
keep-alive clients in the bench process (plain asyncio streams: httpx's pool would cost
more CPU than the API itself on this 2-core machine) request one endpoint for ROUNDS rounds
of SECONDS each, and the section reports the median round. The configs are active
schedules, so each page merges live state from Redis. SQL statements and Redis round trips
per request are counted in this process, on the app itself, by a SQLAlchemy cursor event
and a wrapper around redis-py's one send per round trip.
"""

import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from sqlalchemy import event

from bench import common, fleet
from bench.database import create_migrated_database, drop_database, plain_dsn

N = int(os.environ.get("BENCH_API_CONFIGS", "10000"))
CLIENTS = 50
ROUNDS = 3
SECONDS = float(os.environ.get("BENCH_API_SECONDS", "7"))
ENDPOINTS = ("/api/v1/tasks/configs?limit=100", "/api/v1/users/me")
ADMIN = {"username": "admin@example.com", "password": "bench-admin-password"}
TASKHUB, BASELINE = "this", "baseline"
# The API as it was before the performance work (issue 18): the contender of the targets.
BASELINE_COMMIT = os.environ.get("BENCH_API_BASELINE", "09e41a8")
TARGETS = {ENDPOINTS[0]: (3.0, 500.0), ENDPOINTS[1]: (1.5, None)}  # x baseline's req/s, p99


@dataclass(frozen=True)
class Round:
    latencies: list[float]
    errors: int
    seconds: float

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, p: int) -> float:
        return statistics.quantiles(self.latencies, n=100)[p - 1] * 1000


@dataclass
class Counts:
    sql: list[str] = field(default_factory=list)
    redis: int = 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class KeepAliveClient:
    """One HTTP/1.1 keep-alive connection, as lean as a load generator must be: the bench
    shares the machine with the server, and httpx's pool costs more CPU than the API."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self._host, self._port = host, port
        self._headers = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> int:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        assert self._reader is not None
        request = f"GET {path} HTTP/1.1\r\nHost: {self._host}\r\n{self._headers}\r\n"
        self._writer.write(request.encode())
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await self._reader.readexactly(length)
        return status

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            await self._writer.wait_closed()


async def load(clients: list[KeepAliveClient], path: str, seconds: float) -> Round:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def one_client(client: KeepAliveClient) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            if await client.get(path) == 200:
                latencies.append(time.perf_counter() - started)
            else:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(one_client(client) for client in clients))
    return Round(latencies, errors, time.perf_counter() - started)


@contextlib.contextmanager
def baseline_checkout(commit: str) -> Iterator[Path]:
    """A detached git worktree of `commit` (the API before the change), removed after."""
    path = Path(tempfile.mkdtemp(prefix="taskhub-api-baseline-"))
    git = ["git", "-C", str(common.ROOT), "worktree"]
    subprocess.run([*git, "add", "--detach", str(path), commit], check=True, capture_output=True)
    try:
        yield path
    finally:
        subprocess.run([*git, "remove", "--force", str(path)], check=False, capture_output=True)


@contextlib.asynccontextmanager
async def served(env: dict[str, str], root: Path = common.ROOT) -> AsyncIterator[str]:
    port = free_port()
    process = common.start(
        ["uvicorn", "backend.main:app", "--host", "127.0.0.1", "--port", str(port),
         "--no-access-log", "--log-level", "warning", "--loop", "uvloop", "--http", "httptools",
         # Idle while the other contender is measured: keep its clients' connections open.
         "--timeout-keep-alive", "600"],
        env, f"api-{root.name}", root=root,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:

        async def healthy() -> bool:
            if process.poll() is not None:
                raise RuntimeError("uvicorn exited; see its log")
            try:
                async with httpx.AsyncClient() as probe:
                    return (await probe.get(f"{base}/health")).status_code == 200
            except httpx.TransportError:
                return False

        await common.wait_for(healthy, timeout=60, what="uvicorn")
        yield base
    finally:
        common.stop(process)


async def token(base: str) -> str:
    async with httpx.AsyncClient(base_url=base) as client:
        response = await client.post("/api/v1/auth/login", json=ADMIN)
        response.raise_for_status()
        return response.json()["access_token"]


@contextlib.contextmanager
def counting(engines: list[object]) -> Iterator[Counts]:
    """Count SQL statements on `engines` and Redis round trips in this process."""
    counts = Counts()
    sync_engines = [engine.sync_engine for engine in engines]  # type: ignore[attr-defined]

    def on_execute(*args: object) -> None:
        counts.sql.append(" ".join(str(args[2]).split())[:90])

    original = Connection.send_packed_command

    async def send(self: Connection, command: object, check_health: bool = True) -> None:
        counts.redis += 1
        await original(self, command, check_health)  # type: ignore[arg-type]

    for sync_engine in sync_engines:
        event.listen(sync_engine, "before_cursor_execute", on_execute)
    Connection.send_packed_command = send  # type: ignore[method-assign, assignment]
    try:
        yield counts
    finally:
        Connection.send_packed_command = original  # type: ignore[method-assign]
        for sync_engine in sync_engines:
            event.remove(sync_engine, "before_cursor_execute", on_execute)


async def count_per_request(env: dict[str, str], access: str) -> dict[str, Counts]:
    """One request per endpoint on an in-process app (after one warm-up request each)."""
    from backend.main import create_app  # imported under the bench's environment

    with fleet.environment(env):
        app = create_app()
        found = {}
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            headers = {"Authorization": f"Bearer {access}"}
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                for path in ENDPOINTS:
                    (await client.get(path, headers=headers)).raise_for_status()
                    resources = app.state.resources
                    # The reader (reads in autocommit) has its own engine since issue 18.
                    reader = getattr(resources, "reader", None)
                    engines = [resources.engine] + ([reader.engine] if reader else [])
                    with counting(engines) as counts:
                        (await client.get(path, headers=headers)).raise_for_status()
                    found[path] = counts
    return found


async def measure(
    env: dict[str, str],
    *,
    roots: dict[str, Path],
    rounds_per_path: int = ROUNDS,
    seconds: float = SECONDS,
) -> tuple[dict[str, dict[str, list[Round]]], dict[str, Counts]]:
    """Rounds per contender (a checkout serving the same database) and endpoint; the
    contenders alternate within each round, so a noisy neighbour hits them alike."""
    async with contextlib.AsyncExitStack() as stack:
        clients: dict[str, list[KeepAliveClient]] = {}
        for name, root in roots.items():
            base = await stack.enter_async_context(served(env, root))
            access = await token(base)
            host, port = base.removeprefix("http://").split(":")
            headers = {"Authorization": f"Bearer {access}"}
            clients[name] = [KeepAliveClient(host, int(port), headers) for _ in range(CLIENTS)]
        found: dict[str, dict[str, list[Round]]] = {name: {} for name in roots}
        try:
            for path in ENDPOINTS:
                for name in roots:
                    await load(clients[name], path, 1.0)  # warm-up: connections, caches
                    found[name][path] = []
                for _ in range(rounds_per_path):
                    for name in roots:
                        found[name][path].append(await load(clients[name], path, seconds))
        finally:
            for made in clients.values():
                for client in made:
                    await client.close()
    return found, await count_per_request(env, access)


async def prepare(env: dict[str, str], n: int) -> None:
    url = env["DATABASE_URL"]
    await create_migrated_database(url)
    redis = Redis.from_url(env["REDIS_URL"], decode_responses=True)
    try:
        with fleet.environment(env):
            configs = await fleet.create_configs(plain_dsn(url), n)
            await fleet.start_all(redis, configs)
    finally:
        await redis.aclose()


async def cleanup(env: dict[str, str]) -> None:
    redis = Redis.from_url(env["REDIS_URL"], decode_responses=True)
    try:
        await fleet.delete_keys(redis, env["REDIS_PREFIX"])
    finally:
        await redis.aclose()
    await drop_database(env["DATABASE_URL"])


def median_round(rounds: list[Round]) -> tuple[float, float, float, int]:
    return (
        statistics.median(r.percentile(50) for r in rounds),
        statistics.median(r.percentile(99) for r in rounds),
        statistics.median(r.rps for r in rounds),
        sum(r.errors for r in rounds),
    )


def render(
    rounds: dict[str, dict[str, list[Round]]], counts: dict[str, Counts], *, n: int, seconds: float
) -> str:
    names = list(rounds)
    lines = [
        f"## API under load: {n:,} configs, {CLIENTS} concurrent clients",
        "",
        f"One uvicorn worker per contender; {CLIENTS} keep-alive clients in the bench process"
        f" (same cores), {len(rounds[names[0]][ENDPOINTS[0]])} rounds of {seconds:.0f} s per"
        " endpoint, the contenders alternating within each round; median round shown."
        + (
            f" Baseline: the code at `{BASELINE_COMMIT}` (before the performance work), a git"
            " worktree serving the same database and Redis."
            if BASELINE in rounds
            else ""
        ),
        "",
        "| endpoint | code | p50 ms | p99 ms | requests/s | non-200 | SQL statements"
        " | Redis round trips |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for path in ENDPOINTS:
        for name in names:
            p50, p99, rps, errors = median_round(rounds[name][path])
            c = counts[path]
            sql, redis = (len(c.sql), c.redis) if name == TASKHUB else ("", "")
            lines.append(
                f"| `GET {path}` | {name} | {p50:.1f} | {p99:.1f} | {rps:.0f} | {errors} |"
                f" {sql} | {redis} |"
            )
    if BASELINE in rounds:
        lines.append("")
        for path, (target, p99_target) in TARGETS.items():
            ratio = _ratio(rounds, path)
            p99 = median_round(rounds[TASKHUB][path])[1]
            met = ratio >= target and (p99_target is None or p99 <= p99_target)
            limit = f" and p99 ≤ {p99_target:.0f} ms" if p99_target is not None else ""
            lines.append(
                f"- `{path}`: requests/s Taskhub / baseline = **{ratio:.2f} x** (median of the"
                f" rounds' ratios), p99 {p99:.0f} ms (target ≥ {target:g} x{limit}:"
                f" **{'met' if met else 'missed'}**)."
            )
    lines += ["", "Statements per request (steady state, after one warm-up request):", ""]
    for path in ENDPOINTS:
        statements = "; ".join(f"`{s}`" for s in counts[path].sql) or "none"
        lines.append(f"- `{path}`: {statements}")
    return "\n".join(lines)


def _ratio(rounds: dict[str, dict[str, list[Round]]], path: str) -> float:
    pairs = zip(rounds[TASKHUB][path], rounds[BASELINE][path], strict=True)
    return statistics.median(ours.rps / theirs.rps for ours, theirs in pairs)


async def run_measured(
    *, n: int = N, rounds: int = ROUNDS, seconds: float = SECONDS, baseline: bool = True
) -> tuple[dict[str, dict[str, list[Round]]], dict[str, Counts]]:
    env = {
        **common.isolated_env("api"),
        "FIRST_SUPERUSER": ADMIN["username"],
        "FIRST_SUPERUSER_PASSWORD": ADMIN["password"],
    }
    with contextlib.ExitStack() as stack:
        roots = {TASKHUB: common.ROOT}
        if baseline:
            roots[BASELINE] = stack.enter_context(baseline_checkout(BASELINE_COMMIT))
        try:
            await prepare(env, n)
            found, counts = await measure(env, roots=roots, rounds_per_path=rounds, seconds=seconds)
        finally:
            await cleanup(env)
    for name, by_path in found.items():
        for path, measured in by_path.items():
            if not any(r.latencies for r in measured):
                raise RuntimeError(f"no successful request to {path} ({name})")
    return found, counts


async def run() -> str:
    return render(*await run_measured(), n=N, seconds=SECONDS)


if __name__ == "__main__":
    print(asyncio.run(run()))
