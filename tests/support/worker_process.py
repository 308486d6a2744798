"""Real `taskiq worker` processes for end-to-end tests, and polling helpers."""

import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import aio_pika
from aiormq.exceptions import ChannelNotFoundEntity

from tests.support.processes import eventually

T = TypeVar("T")

# Quick lost-run detection and retry backoff, so the end-to-end tests stay fast.
WORKER_ENV = {
    "LOST_RUN_GRACE_SECONDS": "1",
    "REAPER_INTERVAL_SECONDS": "0.3",
    "RETRY_DELAY_SECONDS": "0.2",
    "RETRY_MAX_DELAY_SECONDS": "1",
    "WORKER_LOG_RUNS": "true",  # which worker ran a run: the tests read it from its log
}
AMQP_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")


async def consumer_count(queue: str, url: str = AMQP_URL) -> int:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        try:
            declared = await channel.declare_queue(queue, passive=True)
        except ChannelNotFoundEntity:
            return 0
        return declared.declaration_result.consumer_count or 0


class Worker:
    """`taskiq worker backend.worker:broker --workers 1 --ack-type when_received`."""

    def __init__(
        self, log_path: Path, env: dict[str, str] | None = None, modules: tuple[str, ...] = ()
    ) -> None:
        self.log_path = log_path
        self.env = {**WORKER_ENV, **(env or {})}
        self.modules = modules  # task modules to load besides backend's own
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self, timeout: float = 30.0) -> "Worker":
        """Start the process and wait until it consumes from its queue."""
        self.spawn()
        queue = self.env.get("RABBITMQ_QUEUE", os.environ["RABBITMQ_QUEUE"])
        await eventually(self._consuming(queue), timeout=timeout, interval=0.2)
        return self

    def spawn(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "taskiq", "worker", "backend.worker:broker",
                    *self.modules,
                    "--workers", "1", "--ack-type", "when_received", "--shutdown-timeout", "3",
                ],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop/kill reach its child too
            )  # fmt: skip

    def _consuming(self, queue: str) -> Callable[[], Awaitable[bool]]:
        async def probe() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited early; see {self.log_path}")
            return await consumer_count(queue, self.env.get("RABBITMQ_URL", AMQP_URL)) > 0

        return probe

    def log_count(self, text: str) -> int:
        return self.log_path.read_text(errors="replace").count(text)

    def kill(self) -> None:
        """SIGKILL the worker and its child: what an OOM kill or a lost machine does."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
