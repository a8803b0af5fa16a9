"""Stopping cleanly: every long-running process stops on SIGTERM (and Ctrl-C)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
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
    exit_now()


def exit_now(code: int = 0) -> None:
    """Ends a process that has stopped cleanly, without the interpreter's finalization.

    Everything was stopped and closed in ``run``; what finalization would still do is tear
    down modules while native threads that outlive them (Temporal's core runtime, gRPC's)
    may call into Python, which aborts the process ("PyGILState_Release ... finalizing",
    SIGABRT: seen at the end of a clean SIGTERM in fault scenario 4). So the logs and the
    standard streams are flushed, and the process exits with ``code`` there and then.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)
