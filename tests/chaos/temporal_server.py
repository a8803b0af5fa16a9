"""A Temporal dev server of a scenario's own, which it may stop and start again.

The shared ``temporal_dev_env`` fixture must stay up for every other test; this one runs
as ``make temporal-dev`` runs it, its state in a file, so a restart on the same port and
file finds every workflow where it was.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from temporalio.client import Client
from temporalio.service import RPCError

from tests.support import (
    Process,
    binary,
    free_port,
    port_is_open,
    search_attribute_args,
    wait_until,
)


class TemporalServer:
    """``temporal server start-dev`` on a fixed port and database file."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.db = directory / "temporal.db"
        self._directory = directory
        self._starts = 0
        self.process: Process | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def args(self) -> list[str]:
        return [
            binary("temporal"),
            "server",
            "start-dev",
            "--headless",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            f"--http-port={free_port()}",
            f"--metrics-port={free_port()}",
            f"--db-filename={self.db}",
            "--log-level=error",
            # As `make temporal-dev` and the Procfile register them.
            *search_attribute_args(),
        ]

    async def start(self) -> None:
        log = self._directory / f"temporal-{self._starts}.log"
        self._starts += 1
        self.process = Process(self.args(), env=os.environ, log_path=log)
        await wait_until(
            lambda: port_is_open(self.port),
            timeout=60,
            what=f"the Temporal dev server listens on {self.port}",
            interval=0.2,
        )
        # Listening is not serving yet: a client connects once the frontend answers.
        await wait_until(self._answers, timeout=60, what="the Temporal dev server answers")

    async def _answers(self) -> bool:
        try:
            client = await Client.connect(self.address)
            await client.count_workflows()
        except (RuntimeError, RPCError):
            return False
        return True

    async def kill(self) -> None:
        """``kill -9``: the server goes as a crash takes it, its database file stays."""
        assert self.process is not None
        self.process.send(signal.SIGKILL)
        await self.process.wait_for_exit(timeout=30)
        self.process.kill_tree()

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill_tree()


@asynccontextmanager
async def own_temporal_server(directory: Path) -> AsyncIterator[TemporalServer]:
    server = TemporalServer(directory)
    try:
        await server.start()
        yield server
    finally:
        server.stop()
