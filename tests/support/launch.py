"""Launchers for the real parts: ports, processes, deadlines.

They know how to start the service's processes, not what to expect of them: the tests say
that in their own words.
"""

# Deadlines are parameters here, not asyncio.timeout (ASYNC109): a failure then names what
# never happened, which a bare TimeoutError would not.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import IO

import psutil

from infrastructure.config import Settings
from tests.support.parsers import parser_children
from tests.support.processes import PROCESSES

REPO_ROOT = Path(__file__).resolve().parents[2]

Condition = Callable[[], bool | Awaitable[bool]]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_open(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def service_env(settings: Settings, **overrides: str) -> dict[str, str]:
    """The environment that makes a service process read ``settings`` (plus ``overrides``).

    Settings inherited from the test runner's environment are dropped first, so the process
    sees these and its defaults, nothing else.
    """
    inherited = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    return {
        **inherited,
        "DATA_DIR": str(settings.data_dir),
        "EVENT_STORE": settings.event_store,
        "SQLITE_POLL_INTERVAL": str(settings.sqlite_poll_interval),
        "POSTGRES_HOST": settings.postgres_host,
        "POSTGRES_PORT": str(settings.postgres_port),
        "POSTGRES_DBNAME": settings.postgres_dbname,
        "POSTGRES_USER": settings.postgres_user,
        "POSTGRES_PASSWORD": settings.postgres_password.get_secret_value(),
        "POSTGRES_SCHEMA": settings.postgres_schema,
        "TEMPORAL_ADDRESS": settings.temporal_address,
        "TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
        "API_KEYS": settings.api_keys.get_secret_value(),
        "LOG_FORMAT": "json",
        # Several processes of one kind run side by side in tests: no fixed ports.
        "PIPELINE_WORKER_METRICS_PORT": "0",
        "READ_WORKER_METRICS_PORT": "0",
        "TEMPORAL_WORKER_METRICS_ADDRESS": "",
        "LOG_LEVEL": "INFO",
        **blob_store_env(settings),
        **overrides,
    }


def blob_store_env(settings: Settings) -> dict[str, str]:
    """The blob-store settings of ``settings`` as environment variables."""
    env: dict[str, str] = {"BLOB_STORE": settings.blob_store}
    if settings.blob_store == "s3":
        secret = settings.aws_secret_access_key
        env |= {
            "S3_BUCKET": settings.s3_bucket or "",
            "S3_ENDPOINT_URL": settings.s3_endpoint_url or "",
            "S3_PREFIX": settings.s3_prefix,
            "AWS_ACCESS_KEY_ID": settings.aws_access_key_id or "",
            "AWS_SECRET_ACCESS_KEY": secret.get_secret_value() if secret else "",
            "AWS_REGION": settings.aws_region or "",
        }
    return env


async def wait_until(
    condition: Condition, *, timeout: float, what: str, interval: float = 0.05
) -> float:
    """Polls ``condition`` until it holds; fails after ``timeout`` seconds.

    Returns how long it took, which some tests report.
    """
    started = time.monotonic()
    deadline = started + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return time.monotonic() - started
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting until {what}")
        await asyncio.sleep(interval)


async def settled(
    value: Callable[[], Awaitable[int]], *, settle: float, timeout: float, what: str
) -> int:
    """The value once it has stopped changing for ``settle`` seconds (eventual consistency)."""
    last = await value()
    last_change = time.monotonic()
    deadline = last_change + timeout
    while time.monotonic() - last_change < settle:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} still changing after {timeout} s (last {last})")
        await asyncio.sleep(0.1)
        current = await value()
        if current != last:
            last, last_change = current, time.monotonic()
    return last


class Process:
    """A real OS process of the service, its output kept in a log file.

    It runs in a session of its own, so signals sent to it never reach the test runner,
    and ``kill_tree`` can clean up whatever it started.
    """

    def __init__(self, args: list[str], *, env: Mapping[str, str], log_path: Path) -> None:
        self.args = args
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("ab")
        self.popen = subprocess.Popen(
            args,
            cwd=REPO_ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @classmethod
    def python_module(cls, module: str, *, env: Mapping[str, str], log_path: Path) -> Process:
        """``python -m module``, as the Makefile and the Procfile run it."""
        return cls([sys.executable, "-m", module], env=env, log_path=log_path)

    @classmethod
    def service(cls, name: str, *, env: Mapping[str, str], log_path: Path) -> Process:
        """One of the service's processes, by its name in the catalogue (``PROCESSES``)."""
        return cls.python_module(PROCESSES[name], env=env, log_path=log_path)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def exit_code(self) -> int | None:
        return self.popen.poll()

    def output(self) -> str:
        """Everything the process wrote so far (also after it has been cleaned up)."""
        return self.log_path.read_text(errors="replace")

    def send(self, sig: signal.Signals) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)

    async def wait_for_exit(self, *, timeout: float) -> int:
        await wait_until(
            lambda: self.popen.poll() is not None,
            timeout=timeout,
            what=f"{' '.join(self.args)} exits",
        )
        return self.popen.returncode

    def descendants(self) -> list[psutil.Process]:
        with contextlib.suppress(psutil.NoSuchProcess):
            return psutil.Process(self.pid).children(recursive=True)
        return []

    def parsers(self) -> list[psutil.Process]:
        """The parser children at work under this process (its fork servers' children)."""
        with contextlib.suppress(psutil.NoSuchProcess):
            return parser_children(psutil.Process(self.pid))
        return []

    def kill_tree(self) -> None:
        """SIGKILL to the process and everything it started (cleanup, never a test step)."""
        for child in [*self.descendants()]:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)
        self._log.close()


@contextlib.contextmanager
def running(process: Process) -> Iterator[Process]:
    """Kills the process (and its children) however the block ends."""
    try:
        yield process
    finally:
        process.kill_tree()
