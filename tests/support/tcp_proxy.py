"""A TCP proxy a test controls: forwards to a real server until cut, refuses while cut, and
can hold one direction (bytes read, never passed on) to freeze a client mid-exchange."""

import asyncio
import contextlib
from typing import Literal

Direction = Literal["upstream", "downstream"]  # client to server, server to client


class TcpProxy:
    """Listens on a free local port and forwards every connection to `target`.

    `cut()` closes the open connections and makes new ones close at once (the client sees the
    server go away); `restore()` forwards again. `hold(direction)` stops passing on what is
    sent in that direction, on every connection, while both stay open: held upstream, a
    client's request never reaches the server; held downstream, it does, and the answer never
    comes back.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.refused = 0  # connections closed at once while cut
        self._cut = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pumps: set[asyncio.Task[None]] = set()
        self._flowing = {"upstream": asyncio.Event(), "downstream": asyncio.Event()}
        for flowing in self._flowing.values():
            flowing.set()

    async def start(self) -> "TcpProxy":
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def cut(self) -> None:
        self._cut = True
        for writer in list(self._writers):
            writer.close()

    def restore(self) -> None:
        self._cut = False

    def hold(self, direction: Direction) -> None:
        self._flowing[direction].clear()

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for pump in list(self._pumps):
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            self.refused += 1
            writer.close()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        self._writers.update((writer, upstream_writer))
        directions: list[tuple[Direction, asyncio.StreamReader, asyncio.StreamWriter]] = [
            ("upstream", reader, upstream_writer),
            ("downstream", upstream_reader, writer),
        ]
        for direction, source, sink in directions:
            pump = asyncio.create_task(
                self._pump(
                    source, sink, self._flowing[direction], peer=writer, other=upstream_writer
                )
            )
            self._pumps.add(pump)
            pump.add_done_callback(self._pumps.discard)

    async def _pump(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        flowing: asyncio.Event,
        *,
        peer: asyncio.StreamWriter,
        other: asyncio.StreamWriter,
    ) -> None:
        # A reset or a cut ends both directions of this connection.
        with contextlib.suppress(ConnectionError, OSError):
            while data := await source.read(65536):
                await flowing.wait()  # held: kept here, and dropped when the connection ends
                sink.write(data)
                await sink.drain()
        for writer in (peer, other):
            self._writers.discard(writer)
            writer.close()
