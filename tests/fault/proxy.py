"""A TCP proxy between clients and a database server, which a test can cut, stall or slow.

Faults of the network between workers and PostgreSQL, without touching the server itself (the
machine's PostgreSQL is shared, so it is never stopped): `down` drops every connection and
refuses new ones, as a dead server or a partition does; `stalled` holds every byte in flight
while connections stay open, as a hung server or a full network buffer does; `slowed` delays
every chunk, as a congested link does. Each is a context manager, and they may overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

_CHUNK = 65536


class Proxy:
    """Forwards ``127.0.0.1:<port>`` to ``upstream``; faults apply to every connection."""

    def __init__(self, upstream_host: str = "127.0.0.1", upstream_port: int = 5432) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._refusing = 0
        self._stalls = 0
        self.delay = 0.0
        self.connections = 0
        """Connections accepted and forwarded, over the proxy's life."""

    async def start(self) -> int:
        """Listen on a free port; return it."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
        self.cut()
        self._flowing.set()
        if self._server is not None:
            await self._server.wait_closed()

    def url(self, url: str) -> str:
        """``url`` (``scheme://user@host:port/db?...``) pointed at this proxy instead."""
        scheme, _, rest = url.partition("://")
        authority, slash, tail = rest.partition("/")
        user, at, _ = authority.rpartition("@")
        return f"{scheme}://{user}{at}127.0.0.1:{self.port}{slash}{tail}"

    def cut(self) -> None:
        """Drop every open connection at once (both ends see a reset)."""
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        """Connections are cut on entry, and new ones refused until the block ends."""
        self._refusing += 1
        self.cut()
        try:
            yield
        finally:
            self._refusing -= 1

    @contextlib.contextmanager
    def stalled(self) -> Iterator[None]:
        """No byte is forwarded until the block ends; connections stay open."""
        self._stalls += 1
        self._flowing.clear()
        try:
            yield
        finally:
            self._stalls -= 1
            if not self._stalls:
                self._flowing.set()

    @contextlib.contextmanager
    def slowed(self, delay: float) -> Iterator[None]:
        """Every chunk waits ``delay`` seconds before it is forwarded."""
        before, self.delay = self.delay, max(self.delay, delay)
        try:
            yield
        finally:
            self.delay = before

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self._writers.update((writer, up_writer))
        async with self._pair(writer, up_writer):
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))

    @contextlib.asynccontextmanager
    async def _pair(self, *writers: asyncio.StreamWriter) -> AsyncIterator[None]:
        try:
            yield
        finally:
            for w in writers:
                self._writers.discard(w)
                w.transport.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(_CHUNK):
                await self._flowing.wait()
                if self.delay:
                    await asyncio.sleep(self.delay)
                if writer.transport.is_closing():
                    break
                writer.write(data)
                await writer.drain()
        # One side ended: end the other, so neither waits on a half-open connection.
        writer.transport.abort()
