"""A Redis master, one replica and three sentinels of a test's own (the installed
`redis-server`, on free local ports), for the failover tests; the shared Redis is untouched."""

import asyncio
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from redis.asyncio import Redis
from redis.exceptions import RedisError

from tests.support.processes import eventually

MASTER_NAME = "taskhub-test"
DOWN_AFTER_MS = 1000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SentinelSet:
    def __init__(self, base: Path) -> None:
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        self.master_port, self.replica_port = free_port(), free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def sentinels(self) -> str:
        """The REDIS_SENTINELS value."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def env(self) -> dict[str, str]:
        """What Taskhub's processes need to find the master through the sentinels."""
        return {"REDIS_SENTINELS": self.sentinels, "REDIS_SENTINEL_MASTER": MASTER_NAME}

    def _spawn(self, port: int, args: list[str]) -> None:
        with (self.base / f"{port}.log").open("ab") as log:
            self.processes[port] = subprocess.Popen(
                ["redis-server", *args], cwd=self.base, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def _server(self, port: int, *extra: str) -> None:
        folder = self.base / str(port)
        folder.mkdir(exist_ok=True)
        self._spawn(port, [
            "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", "",
            "--appendonly", "no", *extra,
        ])  # fmt: skip

    def _sentinel(self, port: int) -> None:
        config = self.base / f"sentinel-{port}.conf"  # sentinels rewrite their file
        config.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {self.base}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master_port} 2\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER_NAME} 10000\n"
            f"sentinel parallel-syncs {MASTER_NAME} 1\n"
        )
        self._spawn(port, [str(config), "--sentinel"])

    async def start(self, timeout: float = 30) -> "SentinelSet":
        self._server(self.master_port)
        self._server(self.replica_port, "--replicaof", "127.0.0.1", str(self.master_port))
        for port in self.sentinel_ports:
            self._sentinel(port)
        deadline = time.monotonic() + timeout
        while not await self._ready():
            if time.monotonic() > deadline:
                raise AssertionError(f"the sentinels never saw the replica; see {self.base}")
            await asyncio.sleep(0.2)
        return self

    async def _ready(self) -> bool:
        """Every sentinel knows the master, its replica and the other two sentinels."""
        for port in self.sentinel_ports:
            sentinel = Redis(port=port, decode_responses=True, socket_timeout=2)
            try:
                state = await sentinel.sentinel_master(MASTER_NAME)
            except RedisError:  # not up yet, or not monitoring yet
                return False
            finally:
                await sentinel.aclose()
            if int(state.get("num-slaves", 0)) < 1 or int(state.get("num-other-sentinels", 0)) < 2:
                return False
        replica = Redis(port=self.replica_port, decode_responses=True)
        try:
            info = await replica.info("replication")
        finally:
            await replica.aclose()
        return info.get("master_link_status") == "up"

    async def master_port_now(self) -> int | None:
        """The port the sentinels name as master, if they all agree; None while they do not
        (a sentinel still switching over names the old master, or none)."""
        ports: set[int | None] = set()
        for port in self.sentinel_ports:
            sentinel = Redis(port=port, decode_responses=True, socket_timeout=2)
            try:
                address = await sentinel.sentinel_get_master_addr_by_name(MASTER_NAME)
            finally:
                await sentinel.aclose()
            ports.add(address[1] if address else None)
        return ports.pop() if len(ports) == 1 else None

    async def promoted(self, port: int, timeout: float = 30) -> None:
        """Wait until every sentinel names `port` as master: the failover is over."""
        await eventually(self.master_port_now, lambda master: master == port, timeout=timeout)

    def kill(self, port: int) -> None:
        """SIGKILL one server: what a lost machine does to it."""
        process = self.processes[port]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
