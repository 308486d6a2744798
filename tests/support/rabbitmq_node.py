"""A RabbitMQ node of a test's own, on free local ports, for the tests that stop its broker
(`rabbitmqctl stop_app`): the machine's shared node stays untouched.

It runs the installed server as the current user (the packaged wrapper in /usr/sbin switches
to the rabbitmq user and its home), with its own node name, Erlang cookie, data and log
directories, no plugins, and its AMQP and distribution ports below the ephemeral range (a
port in that range may be taken by any outgoing connection of the machine's meanwhile).
"""

import asyncio
import contextlib
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
CTL = Path("/usr/lib/rabbitmq/bin/rabbitmqctl")


def available() -> bool:
    return SERVER.exists() and CTL.exists()


def _free_low_port() -> int:
    """A free port below 32768 whose neighbour (the distribution port) is free too."""
    for _ in range(200):
        port = random.randrange(20000, 32000, 2)
        try:
            for candidate in (port, port + 1):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair below the ephemeral range")


class RabbitNode:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = _free_low_port()
        self.name = f"taskhub-test-{secrets.token_hex(4)}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self.process: subprocess.Popen[bytes] | None = None
        home = base / "home"
        for folder in (home, base / "mnesia", base / "log"):
            folder.mkdir(parents=True, exist_ok=True)
        cookie = home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16))
        cookie.chmod(0o400)
        (base / "enabled_plugins").write_text("[].\n")
        (base / "rabbitmq.conf").write_text(f"listeners.tcp.default = 127.0.0.1:{self.port}\n")
        self.env = {
            **os.environ,
            "HOME": str(home),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_DIST_PORT": str(self.port + 1),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq"),
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),  # none: not the machine's
            "RABBITMQ_PID_FILE": str(base / "pid"),
        }

    def spawn(self) -> None:
        with (self.base / "server.log").open("ab") as log:
            self.process = subprocess.Popen(
                [str(SERVER)], cwd=self.base, env=self.env, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    async def start(self, timeout: float = 90) -> "RabbitNode":
        """Spawn the node and wait until it runs (`await_startup` fails at once while the
        node has not registered with epmd yet, so it is asked again)."""
        self.spawn()
        deadline = time.monotonic() + timeout
        while True:
            try:
                await self.ctl("await_startup", timeout=max(5, deadline - time.monotonic()))
                return self
            except AssertionError:
                assert self.process is not None
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"RabbitMQ did not start; see {self.base}") from None
                await asyncio.sleep(0.5)

    async def ctl(self, *args: str, timeout: float = 60) -> str:
        """`rabbitmqctl -n <this node> ...`; raises if it fails."""
        done = await asyncio.to_thread(
            subprocess.run,
            [str(CTL), "-n", self.name, *args, "--timeout", str(int(timeout))],
            env=self.env, capture_output=True, text=True, timeout=timeout + 10,
        )  # fmt: skip
        if done.returncode != 0:
            raise AssertionError(f"rabbitmqctl {' '.join(args)}: {done.stdout}{done.stderr}")
        return done.stdout

    async def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):  # killed below
            await self.ctl("stop", timeout=30)
        try:
            await asyncio.to_thread(self.process.wait, 30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        shutil.rmtree(self.base / "mnesia", ignore_errors=True)
