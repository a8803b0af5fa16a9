"""The service's processes, started one by one so a scenario can kill any of them, and the
figures every scenario prints.

Each process is a real ``python -m ...`` on free loopback ports against a real Temporal dev
server; the event store is whichever ``settings`` says (SQLite or PostgreSQL).
"""

# Deadlines are parameters, as in tests/support/launch.py (ASYNC109).
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

import httpx
from temporalio.client import Client

from application.artifacts import ArtifactsApplication
from domain.artifact import Artifact, ArtifactStatus
from infrastructure.config import Settings, tenant_keys
from infrastructure.eventstore import application_env
from tests.support import PROCESSES, Process, free_port, service_env, wait_until

# CHAOS_SCALE=small is `make chaos-quick`: the same scenarios with fewer uploads and faults.
SMALL = os.environ.get("CHAOS_SCALE", "full") == "small"

# The processes a scenario runs (the read worker serves no scenario's checks).
MODULES = {name: PROCESSES[name] for name in ("api", "pipeline_worker", "temporal_worker")}


@dataclass
class Stack:
    """The API, the pipeline worker and the Temporal worker on their own task queue."""

    settings: Settings
    client: Client
    logs: Path
    task_queue: str = field(default_factory=lambda: f"chaos-{uuid.uuid4()}")
    api_port: int = field(default_factory=free_port)
    processes: dict[str, Process] = field(default_factory=dict)
    restarts: Counter[str] = field(default_factory=Counter)
    modules: dict[str, str] = field(default_factory=lambda: dict(MODULES))
    # Settings of the scenario's processes beyond the event store and Temporal's address.
    overrides: dict[str, str] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def env(self) -> dict[str, str]:
        return service_env(
            self.settings,
            TEMPORAL_ADDRESS=self.client.service_client.config.target_host,
            TEMPORAL_TASK_QUEUE=self.task_queue,
            API_HOST="127.0.0.1",
            API_PORT=str(self.api_port),
            **self.overrides,
        )

    def start(self, name: str) -> Process:
        n = self.restarts[name]
        self.restarts[name] += 1
        process = Process.python_module(
            self.modules[name], env=self.env(), log_path=self.logs / f"{name}-{n}.log"
        )
        self.processes[name] = process
        return process

    def kill9(self, name: str) -> None:
        process = self.processes[name]
        process.send(signal.SIGKILL)
        process.popen.wait(timeout=10)
        process.kill_tree()

    @property
    def api_headers(self) -> dict[str, str]:
        """What a client of this stack sends: its first API key, when the settings (or the
        scenario's overrides) hold any."""
        if "API_KEYS" in self.overrides:
            keys = [entry.key for entry in tenant_keys(self.overrides["API_KEYS"])]
        else:
            keys = self.settings.api_key_list
        return {"Authorization": f"Bearer {keys[0]}"} if keys else {}

    async def api_ready(self) -> None:
        async with httpx.AsyncClient(
            base_url=self.api_url, timeout=5, headers=self.api_headers
        ) as http:

            async def ready() -> bool:
                try:
                    return (await http.get("/ready")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(ready, timeout=60, what="the API answers /ready", interval=0.25)

    def stop_all(self) -> None:
        for process in self.processes.values():
            process.kill_tree()


@asynccontextmanager
async def running_stack(
    settings: Settings,
    client: Client,
    logs: Path,
    *,
    overrides: dict[str, str] | None = None,
    **modules: str,
) -> AsyncIterator[Stack]:
    """The three processes; ``modules`` replaces one, e.g. ``temporal_worker=...``;
    ``overrides`` are settings (environment variables) for all of them."""
    stack = Stack(settings, client, logs, modules={**MODULES, **modules}, overrides=overrides or {})
    try:
        for name in MODULES:
            stack.start(name)
        await stack.api_ready()
        yield stack
    finally:
        stack.stop_all()


async def upload(http: httpx.AsyncClient, i: int) -> UUID:
    """One small text file through ``POST /artifacts``, as a user sends it."""
    content = f"chaos upload {i} {uuid.uuid4()}\n".encode()
    return await upload_file(http, f"note-{i}.txt", content)


async def upload_file(http: httpx.AsyncClient, name: str, content: bytes) -> UUID:
    response = await http.post("/artifacts", files={"file": (name, content)})
    assert response.status_code in (200, 201, 202), response.text
    return UUID(response.json()["id"])


async def upload_many(api_url: str, n: int, concurrency: int = 8) -> list[UUID]:
    ids: list[UUID] = []
    queue = iter(range(n))
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as http:

        async def uploader() -> None:
            for i in queue:
                ids.append(await upload(http, i))

        await asyncio.gather(*(uploader() for _ in range(concurrency)))
    return ids


def reader(settings: Settings) -> ArtifactsApplication:
    """The application, to read event streams beside the running processes.

    It creates no tables: the API has, and PostgreSQL answers "tuple concurrently updated"
    to catalogue changes racing with another process's.
    """
    return ArtifactsApplication(env={**application_env(settings), "CREATE_TABLE": "false"})


def statuses(app: ArtifactsApplication, ids: list[UUID]) -> Counter[ArtifactStatus]:
    """Each artifact's status as its event stream says."""
    return Counter(app.get_artifact(i).status for i in ids)


async def wait_all_processed(settings: Settings, ids: list[UUID], *, timeout: float) -> float:
    """Seconds until every artifact is PROCESSED (fails if any FAILED or time runs out)."""
    app = await asyncio.to_thread(reader, settings)

    async def all_processed() -> bool:
        found = await asyncio.to_thread(statuses, app, ids)
        assert found[ArtifactStatus.FAILED] == 0, dict(found)
        return found[ArtifactStatus.PROCESSED] == len(ids)

    try:
        return await wait_until(
            all_processed, timeout=timeout, what=f"{len(ids)} artifacts processed", interval=0.5
        )
    finally:
        app.close()


async def outcomes(settings: Settings, ids: list[UUID]) -> dict[UUID, Artifact]:
    """Each artifact once all have an outcome (processed or failed)."""
    app = await asyncio.to_thread(reader, settings)
    found: dict[UUID, Artifact] = {}

    async def all_decided() -> bool:
        found.update({i: await asyncio.to_thread(app.get_artifact, i) for i in ids})
        return all(artifact.has_outcome for artifact in found.values())

    try:
        await wait_until(all_decided, timeout=600, what="every file has an outcome", interval=0.5)
    finally:
        app.close()
    return found


async def runs_per_workflow(client: Client, task_queue: str) -> Counter[str]:
    """How many processing runs Temporal lists per workflow id on the task queue, once the
    list (visibility, eventually consistent) has stopped changing. The reconciler's own
    workflows run on the same queue and are not counted."""
    query = f'TaskQueue = "{task_queue}" AND WorkflowType = "ProcessArtifactWorkflow"'

    async def count() -> int:
        return (await client.count_workflows(query)).count

    last, stable_since = await count(), time.monotonic()
    deadline = stable_since + 60
    while time.monotonic() - stable_since < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        if (current := await count()) != last:
            last, stable_since = current, time.monotonic()
    return Counter([run.id async for run in client.list_workflows(query)])


@dataclass
class Figures:
    """The one line of figures a scenario prints."""

    scenario: str
    store: str
    uploads: int
    runs: int
    duplicates: int
    lost: int
    recovery_s: float
    extra: str = ""  # what else the scenario measured

    def print(self) -> None:
        print(
            f"\nCHAOS {self.scenario} [{self.store}] uploads={self.uploads} runs={self.runs} "
            f"duplicates={self.duplicates} lost={self.lost} recovery={self.recovery_s:.1f}s"
            + (f" {self.extra}" if self.extra else "")
        )


def figures(
    scenario: str,
    settings: Settings,
    ids: list[UUID],
    runs: Counter[str],
    processed: int,
    recovery_s: float,
) -> Figures:
    return Figures(
        scenario=scenario,
        store=settings.event_store,
        uploads=len(ids),
        runs=sum(runs.values()),
        duplicates=sum(n - 1 for n in runs.values() if n > 1),
        lost=len(ids) - processed,
        recovery_s=recovery_s,
    )
