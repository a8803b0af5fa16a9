"""Container health checks: ``python -m infrastructure.healthcheck PROCESS`` exits 0 when
the process is healthy, 1 (with the reason on stderr) when it is not.

- ``api``: ``GET /ready`` answers 200 (event store, blob store and Temporal reachable).
- ``pipeline_worker``, ``read_worker``: its heartbeat file under DATA_DIR is fresh. The
  worker touches it from its event loop, so a process that is alive but wedged shows as
  unhealthy.
- ``temporal_worker``: Temporal saw a poller from this host (temporalio's default worker
  identity is ``<pid>@<hostname>``) on the task queue within the last minute, so the check
  fails when the worker has lost Temporal, not only when it has died.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import time
import urllib.request
from pathlib import Path

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from infrastructure.config import Settings
from infrastructure.temporal.connection import connect

HEARTBEAT_SECONDS = 10.0
# A few missed beats before a worker counts as unhealthy.
HEARTBEAT_MAX_AGE = 6 * HEARTBEAT_SECONDS
POLLER_MAX_AGE = 60.0


def heartbeat_path(settings: Settings, process: str) -> Path:
    return settings.data_dir / "heartbeats" / process


async def beat(path: Path, stop: asyncio.Event, interval: float = HEARTBEAT_SECONDS) -> None:
    """Touches ``path`` every ``interval`` seconds until ``stop`` is set."""
    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    while not stop.is_set():
        await asyncio.to_thread(path.touch)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)


def check_heartbeat(path: Path, max_age: float = HEARTBEAT_MAX_AGE) -> str | None:
    """None when healthy, else why not."""
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return f"no heartbeat at {path}"
    return None if age <= max_age else f"last heartbeat {age:.0f} s ago"


def check_api(settings: Settings) -> str | None:
    url = f"http://127.0.0.1:{settings.api_port}/ready"
    request = urllib.request.Request(url)
    if settings.api_key_list:
        # /ready is behind the API keys like every route but /health.
        request.add_header("Authorization", f"Bearer {settings.api_key_list[0]}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return None if response.status == 200 else f"{url} answered {response.status}"
    except OSError as err:  # HTTPError (503: degraded) is an OSError too
        return f"{url}: {err}"


async def task_queue_pollers(client: Client, task_queue: str) -> dict[str, float]:
    """The identities polling ``task_queue`` (workflow or activity tasks), with how many
    seconds ago Temporal last saw each."""
    seen: dict[str, float] = {}
    now = time.time()
    for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY):
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=task_queue),
                task_queue_type=kind,
            )
        )
        for poller in response.pollers:
            age = now - poller.last_access_time.ToSeconds()
            seen[poller.identity] = min(age, seen.get(poller.identity, age))
    return seen


async def check_temporal_worker(settings: Settings) -> str | None:
    try:
        client = await asyncio.wait_for(connect(settings), timeout=10)
        pollers = await task_queue_pollers(client, settings.temporal_task_queue)
    except Exception as err:  # unreachable Temporal is the answer, not a crash
        return f"Temporal at {settings.temporal_address}: {err!r}"
    host = socket.gethostname()
    ours = [age for identity, age in pollers.items() if identity.endswith(f"@{host}")]
    if ours and min(ours) <= POLLER_MAX_AGE:
        return None
    return f"no poller from {host} on task queue {settings.temporal_task_queue!r}"


def main() -> None:
    process = sys.argv[1] if len(sys.argv) > 1 else ""
    settings = Settings()
    if process == "api":
        problem = check_api(settings)
    elif process in ("pipeline_worker", "read_worker"):
        problem = check_heartbeat(heartbeat_path(settings, process))
    elif process == "temporal_worker":
        problem = asyncio.run(check_temporal_worker(settings))
    else:
        problem = (
            "usage: python -m infrastructure.healthcheck "
            "api|pipeline_worker|read_worker|temporal_worker"
        )
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip the interpreter's finalisation: the Temporal client's native runtime can still
    # have threads calling into Python then, which once aborted this probe (SIGABRT,
    # "PyGILState_Release ... finalizing") after a healthy answer. A probe has nothing to
    # clean up, and its exit status is its answer.
    os._exit(1 if problem else 0)


if __name__ == "__main__":
    main()
