"""Stopping cleanly: every long-running process stops on SIGTERM (and Ctrl-C)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import Protocol

from infrastructure.config import Settings
from infrastructure.logging import configure_logging


class Process(Protocol):
    """What a worker process runs: everything, until ``stop`` is set."""

    async def run(self, stop: asyncio.Event) -> None: ...


def stop_on_signals() -> asyncio.Event:
    """An event set by the first SIGTERM or SIGINT the running loop receives."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def run_process(build: Callable[[Settings], Process]) -> None:
    """A worker's whole ``main``: its logging, then the process the composition root
    ``build``s from the environment's settings, run until SIGTERM or SIGINT."""
    settings = Settings()
    configure_logging(settings)

    async def main() -> None:
        # Signals first: a SIGTERM while the process is being built still stops it.
        stop = stop_on_signals()
        await build(settings).run(stop)

    asyncio.run(main())
