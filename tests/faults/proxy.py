"""A TCP proxy the test controls: put it between a process and PostgreSQL, then cut the line.

``cut()`` aborts every open connection and stops listening, so new connection
attempts are refused, as when the database host goes away; ``restore()``
listens again on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tests.net import free_port


class TcpProxy:
    """Listens on 127.0.0.1:``port``; forwards to ``target_host:target_port``, or to a Unix socket."""

    def __init__(
        self, target_host: str = "127.0.0.1", target_port: int = 5432, *, unix_socket: str | None = None
    ) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.unix_socket = unix_socket
        self.port = free_port()

        self._server: asyncio.base_events.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._transports: set[asyncio.WriteTransport] = set()

    @classmethod
    def for_database(cls, url: str) -> TcpProxy:
        """A proxy to the PostgreSQL server of ``url`` (TCP, or a Unix socket given as ``?host=/dir``)."""
        parts = urlsplit(url)
        socket_dir = dict(parse_qsl(parts.query)).get("host", "")
        port = parts.port or 5432
        if socket_dir.startswith("/"):
            return cls(unix_socket=f"{socket_dir}/.s.PGSQL.{port}")
        return cls(parts.hostname or "127.0.0.1", port)

    def url_through(self, url: str) -> str:
        """``url`` pointed at this proxy instead of the server."""
        parts = urlsplit(url)
        user = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "host"])
        return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{self.port}", query=query))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)

    async def cut(self) -> None:
        """Refuse new connections and drop every open one (both ends see a reset)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        # Dropped before waiting for the server: since Python 3.12.1 wait_closed() waits for every connection.
        for transport in list(self._transports):
            transport.abort()
        for pipe in list(self._pipes):
            pipe.cancel()
        self._transports.clear()
        if server is not None:
            await server.wait_closed()

    async def restore(self) -> None:
        await self.start()

    async def close(self) -> None:
        await self.cut()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            if self.unix_socket is not None:
                server_reader, server_writer = await asyncio.open_unix_connection(self.unix_socket)
            else:
                server_reader, server_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            client_writer.transport.abort()
            return
        for writer in (client_writer, server_writer):
            self._transports.add(writer.transport)
        pipes = [
            asyncio.create_task(self._pump(client_reader, server_writer)),
            asyncio.create_task(self._pump(server_reader, client_writer)),
        ]
        self._pipes.update(pipes)
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pipe in pipes:
                pipe.cancel()
                self._pipes.discard(pipe)
            for writer in (client_writer, server_writer):
                self._transports.discard(writer.transport)
                writer.transport.abort()

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
