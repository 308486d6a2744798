"""A local HTTP server that counts the requests it gets, by path: the `http.request` task type
calls it, so a test counts how often a task body really ran (a worker's log line or a record
says only that a message arrived, or that a run ended).

Paths starting `/status/<code>/` are answered with that status (to make runs fail); every
other path gets 200.
"""

import asyncio
import contextlib
from collections import Counter


class HttpSink:
    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
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

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode()
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.lower().split(b"\r\n")
                    if line.startswith(b"content-length:")
                ),
                0,
            )
            await reader.readexactly(length)
            self.hits[path] += 1
            parts = path.split("/")
            code = int(parts[2]) if len(parts) > 2 and parts[1] == "status" else 200
            writer.write(
                f"HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
        writer.close()
