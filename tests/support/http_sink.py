"""A real local HTTP server that records what it is sent and answers as the test says.

It counts requests by path: the `http.request` task type calls it, so a test counts how often
a task body really ran (a worker's log line or a record says only that a message arrived, or
that a run ended); paths starting `/status/<code>/` are answered with that status, and a
path in `redirects` with a 302 to its location. It keeps
each request (headers and raw body: a webhook's signature is checked against them), and
answers the statuses in `answers` first, in order (a flaky receiver); 200 otherwise.
"""

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class HttpSink:
    def __init__(self, answers: list[int] | None = None) -> None:
        self.hits: Counter[str] = Counter()
        self.received: list[Received] = []
        self.answers = list(answers or [])
        self.redirects: dict[str, str] = {}
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> "HttpSink":
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            method, path, _ = request_line.split(" ", 2)
            headers = {}
            for line in header_lines:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.hits[path] += 1
            self.received.append(Received(method, path, headers, body))
            location = self.redirects.get(path)
            status = 302 if location else self._status(path)
            extra = f"Location: {location}\r\n" if location else ""
            writer.write(
                f"HTTP/1.1 {status} X\r\n{extra}Content-Length: 0\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            await writer.drain()
        writer.close()

    def _status(self, path: str) -> int:
        if self.answers:
            return self.answers.pop(0)
        parts = path.split("/")
        return int(parts[2]) if len(parts) > 2 and parts[1] == "status" else 200


@contextlib.asynccontextmanager
async def http_sink(answers: list[int] | None = None) -> AsyncIterator[HttpSink]:
    sink = await HttpSink(answers).start()
    try:
        yield sink
    finally:
        await sink.close()
