"""Real API processes (`uvicorn backend.main:app`) for the tests that need one or two."""

import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support import processes


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class ApiServer:
    base_url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


async def start_api(app: str = "backend.main:app", **env: str) -> ApiServer:
    """`uvicorn backend.main:app` with the test session's isolated settings (os.environ)."""
    port = free_port()
    name = f"api-{port}"
    process = processes.start(
        ["uvicorn", app, "--host", "127.0.0.1", "--port", str(port)],
        log_name=name,
        env=env,
    )
    log_path = processes.log_path(name)
    base_url = f"http://127.0.0.1:{port}"

    async def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"API exited early; see {log_path}")
        try:
            async with httpx.AsyncClient(base_url=base_url) as http:
                return (await http.get("/health")).status_code == 200
        except httpx.TransportError:
            return False

    await processes.eventually(healthy, timeout=30, interval=0.2)
    return ApiServer(base_url=base_url, process=process, log_path=log_path)
