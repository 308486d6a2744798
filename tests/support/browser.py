"""A real API process (uvicorn) and headless Chromium for the console's browser tests.

Chromium is Debian's package (scripts/ensure-chromium.sh installs it); Playwright drives it
through `executable_path` and never downloads a browser of its own.
"""

import os
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright

from tests.support import processes

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


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


async def start_api(**env: str) -> ApiServer:
    """`uvicorn backend.main:app` with the test session's isolated settings (os.environ)."""
    port = free_port()
    name = f"api-{port}"
    process = processes.start(
        ["uvicorn", "backend.main:app", "--host", "127.0.0.1", "--port", str(port)],
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


@dataclass
class ConsoleErrors:
    """Every error a page reports: console errors and uncaught exceptions."""

    messages: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.messages.append(f"uncaught: {error}"))

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location.get("url", "")
            self.messages.append(f"{message.text} @ {where}")


def require_chromium() -> None:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-chromium.sh (make test does)")


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    require_chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()
