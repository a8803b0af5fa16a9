"""11. An event nobody can decode at the head of the stream blocks nothing behind it.

An ``ArtifactCreated`` whose stored state does not decode (as a corrupted row, or a deploy
that changed what the state means, leaves it) sits first in the stream; then uploads
arrive. The pipeline worker records it as a dead letter with the position that passes it
and starts every upload behind it; the read worker does the same and lists them all; a
restarted pipeline worker neither delivers it again nor stalls on it; and
``GET /dead-letters`` shows it for both workers.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from application.artifacts import ArtifactsApplication
from infrastructure.config import Settings
from infrastructure.eventstore import application_env, tracking_recorder
from infrastructure.pipeline_worker import CONSUMER, TOPICS
from tests.chaos.stack import (
    SMALL,
    figures,
    reader,
    running_stack,
    runs_per_workflow,
    upload_many,
    wait_all_processed,
)
from tests.support import PROCESSES, wait_until
from tests.support.events import insert_undecodable_created

# Uploads in all: most before the pipeline worker's restart, the rest after it.
UPLOADS = 10 if SMALL else 50
AFTER_RESTART = 2 if SMALL else 5


async def test_an_undecodable_event_is_a_dead_letter_and_blocks_nothing(
    tmp_path: Path, settings: Settings, temporal_dev_env: WorkflowEnvironment
) -> None:
    client = temporal_dev_env.client
    bad = await asyncio.to_thread(_undecodable_at_the_head, settings)

    async with running_stack(settings, client, tmp_path) as stack:
        stack.modules["read_worker"] = PROCESSES["read_worker"]
        stack.start("read_worker")
        ids = await upload_many(stack.api_url, UPLOADS - AFTER_RESTART)
        started = time.monotonic()
        await wait_all_processed(settings, ids, timeout=300)
        recovery = time.monotonic() - started

        # Restarted, the pipeline worker resumes after the dead letter: not delivered again,
        # no stall; what is uploaded next is processed.
        pipeline = stack.processes["pipeline_worker"]
        pipeline.send(signal.SIGTERM)
        assert await pipeline.wait_for_exit(timeout=30) == 0
        assert pipeline.output().count('"dead_letter_recorded"') == 1
        again = stack.start("pipeline_worker")
        more = await upload_many(stack.api_url, AFTER_RESTART)
        await wait_all_processed(settings, more, timeout=120)
        assert '"dead_letter_recorded"' not in again.output()
        assert '"subscription_stalled"' not in again.output()
        ids += more

        runs = await runs_per_workflow(client, stack.task_queue)
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
            letters = await _dead_letters_of_both(http)
            listed = await _listed(http, len(ids))
    # Read once the processes have stopped: no catalogue change races theirs.
    blocked = await asyncio.to_thread(_blocked, settings)

    result = figures("11-dead-letter", settings, ids, runs, len(ids), recovery)
    events = {d["position"] for d in letters}
    result.extra = (
        f"dead_letters={len(events)} (recorded by {len(letters)} workers) "
        f"blocked={blocked} listed={listed}"
    )
    result.print()
    assert result.runs == len(ids)
    assert result.duplicates == 0
    assert result.lost == 0
    assert blocked == 0
    assert listed == len(ids)
    assert sorted((d["consumer"], d["position"]) for d in letters) == [
        ("pipeline_worker", bad),
        ("read_worker", bad),
    ]


def _undecodable_at_the_head(settings: Settings) -> int:
    app = ArtifactsApplication(env=application_env(settings))  # creates the tables
    try:
        _, position = insert_undecodable_created(app)
        return position
    finally:
        app.close()


async def _dead_letters_of_both(http: httpx.AsyncClient) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []

    async def both_recorded() -> bool:
        response = await http.get("/dead-letters")
        assert response.status_code == 200, response.text
        found[:] = response.json()["items"]
        return {d["consumer"] for d in found} == {"pipeline_worker", "read_worker"}

    await wait_until(both_recorded, timeout=60, what="both workers' dead letters are listed")
    return found


async def _listed(http: httpx.AsyncClient, expected: int) -> int:
    """How many artifacts the read model lists, once it has caught up with them all."""
    count = 0

    async def all_listed() -> bool:
        nonlocal count
        response = await http.get("/artifacts", params={"limit": 100})
        count = len(response.json()["items"])
        return count >= expected

    await wait_until(all_listed, timeout=60, what="the read model lists every upload")
    return count


def _blocked(settings: Settings) -> int:
    """Events the pipeline worker follows that are still after its recorded position."""
    tracking = tracking_recorder(settings, CONSUMER)
    app = reader(settings)
    try:
        position = tracking.max_tracking_id(app.name)
        waiting = app.recorder.select_notifications(
            start=position, limit=1000, topics=list(TOPICS), inclusive_of_start=False
        )
        return len(waiting)
    finally:
        tracking.close()
        app.close()
