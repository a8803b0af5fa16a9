"""A TCP link a test can cut and restore, between a real process and its real server."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable

from tests.support.launch import free_port


class TcpProxy:
    """A TCP link to ``target_host:target_port`` that a test can cut and restore.

    Lets a real process lose its real server mid-run without killing the server: while
    cut, open connections are closed and new ones are refused. Listening on another
    address than the server's (``host``), it also makes a server that listens on loopback
    only reachable from other network namespaces.
    """

    def __init__(
        self, target_port: int, *, host: str = "127.0.0.1", target_host: str = "127.0.0.1"
    ) -> None:
        self.host = host
        self.port = free_port(host)
        self._target_host = target_host
        self._target_port = target_port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread.start()

    def _call(self, coro: Awaitable[None]) -> None:
        async def wrapped() -> None:
            await coro

        asyncio.run_coroutine_threadsafe(wrapped(), self._loop).result(timeout=10)

    def restore(self) -> None:
        self._call(self._listen())

    def cut(self) -> None:
        self._call(self._cut())

    def close(self) -> None:
        self._call(self._shut_down())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._relay, self.host, self.port)

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()

    async def _shut_down(self) -> None:
        await self._cut()
        relays = asyncio.all_tasks() - {asyncio.current_task()}
        for relay in relays:
            relay.cancel()
        await asyncio.gather(*relays, return_exceptions=True)

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(self._target_host, self._target_port)
        except OSError:
            client_w.close()
            return
        self._writers |= {client_w, server_w}
        await asyncio.gather(
            _pipe(client_r, server_w), _pipe(server_r, client_w), return_exceptions=True
        )
        self._writers -= {client_w, server_w}


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(64 * 1024):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()
