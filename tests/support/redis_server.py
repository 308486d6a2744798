"""A redis-server of the test's own, on a free port and in its own directory: stopped and
started again on the same port and data as the test says."""

import subprocess
from pathlib import Path

from redis.asyncio import Redis
from redis.exceptions import RedisError

from tests.support.processes import eventually
from tests.support.redis_sentinel import free_port


class RedisServer:
    def __init__(self, directory: Path, *, appendonly: bool = False) -> None:
        self.directory = directory
        self.appendonly = appendonly  # as docker-compose runs it: a restart keeps every write
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self, timeout: float = 10) -> None:
        with (self.directory / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(  # noqa: ASYNC220  # returns at once
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                 "--dir", str(self.directory), "--save", "",
                 "--appendonly", "yes" if self.appendonly else "no"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        probe = Redis(port=self.port, socket_connect_timeout=1)

        async def answers() -> bool:
            try:
                return bool(await probe.ping())
            except RedisError:
                return False

        try:
            await eventually(answers, timeout=timeout, interval=0.05)
        finally:
            await probe.aclose()

    def stop(self) -> None:
        """SIGTERM: Redis writes its AOF out and exits, as on a normal restart."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(15)

    def kill(self) -> None:
        """SIGKILL: gone at once, with only what was saved before."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
