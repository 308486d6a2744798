"""Start and stop the real taskiq processes the end-to-end tests need; poll with deadlines."""

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
T = TypeVar("T")


def log_path(log_name: str) -> Path:
    log_dir = Path(os.environ.get("TEST_LOG_DIR", tempfile.gettempdir()))
    return log_dir / f"taskhub-{log_name}-{os.getpid()}.log"


def start(args: list[str], *, log_name: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    path = log_path(log_name)
    log = path.open("w")
    process = subprocess.Popen(
        [str(BIN / args[0]), *args[1:]],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: a kill reaches its children too
    )
    process.log_path = path  # type: ignore[attr-defined]
    return process


def start_scheduler(name: str = "scheduler", **env: str) -> subprocess.Popen:
    args = ["taskiq", "scheduler", "backend.scheduler:scheduler", "--update-interval", "0"]
    return start([*args, "--no-configure-logging"], log_name=name, env=env)


async def scheduler_ready(process: subprocess.Popen, timeout: float = 30) -> None:
    """Wait until the scheduler has reconciled and runs its loop (a fire due before that is
    sent late, by design: a test that checks punctuality must not race the start-up)."""
    log_path: Path = process.log_path  # type: ignore[attr-defined]
    await eventually(
        lambda: asyncio.to_thread(log_path.read_text),
        lambda text: "Startup completed." in text,
        timeout=timeout,
    )


def stop(process: subprocess.Popen, *, kill: bool = False, timeout: float = 15) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGINT)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


async def eventually(
    probe: Callable[[], Awaitable[T]],
    check: Callable[[T], object] = bool,
    *,
    timeout: float = 10.0,
    interval: float = 0.1,
) -> T:
    """Poll `probe` until `check` (default: truthiness) passes; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if check(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        await asyncio.sleep(interval)
