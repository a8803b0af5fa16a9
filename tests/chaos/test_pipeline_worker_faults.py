"""The pipeline worker killed, restarted and rewound: each artifact still gets one run.

1. Uploads keep coming while the pipeline worker is ``kill -9``-ed at random moments and
   restarted: every artifact is processed, by exactly one workflow run, none is lost
   (its position is recorded only after the start, and the workflow-id policy turns the
   starts it repeats into no-ops).
7. Its position rewound to zero once every run has completed: it asks for every start
   again, and Temporal starts none (REJECT_DUPLICATE keeps completed ids closed).
"""

# Random moments for faults, not secrets (S311).

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
import time
from pathlib import Path

import psycopg
from psycopg import sql
from temporalio.testing import WorkflowEnvironment

from infrastructure.config import Settings
from infrastructure.pipeline_worker import CONSUMER
from tests.chaos.stack import (
    SMALL,
    Stack,
    figures,
    running_stack,
    runs_per_workflow,
    upload_many,
    wait_all_processed,
)
from tests.support import wait_until

UPLOADS = 60 if SMALL else 500
KILLS = 2 if SMALL else 5
# Seconds between kills: the small run's uploads take only a few seconds.
KILL_AFTER = (0.2, 1.0) if SMALL else (0.5, 3.0)


async def test_kill_9_the_pipeline_worker_during_uploads_then_rewind_it_to_zero(
    tmp_path: Path, settings: Settings, temporal_dev_env: WorkflowEnvironment
) -> None:
    client = temporal_dev_env.client
    async with running_stack(settings, client, tmp_path) as stack:
        uploads = asyncio.create_task(upload_many(stack.api_url, UPLOADS))
        await _kill_and_restart_at_random(stack, uploads)
        ids = await uploads
        restarted = time.monotonic()
        await wait_all_processed(settings, ids, timeout=300)
        recovery = time.monotonic() - restarted
        runs = await runs_per_workflow(client, stack.task_queue)
        result = figures("1-kill9-pipeline-worker", settings, ids, runs, len(ids), recovery)
        result.print()
        assert result.runs == len(ids)
        assert result.duplicates == 0
        assert result.lost == 0

        # 7: rewind the stopped worker's position to zero and let it read everything again.
        stack.processes["pipeline_worker"].send(signal.SIGTERM)
        assert await stack.processes["pipeline_worker"].wait_for_exit(timeout=30) == 0
        rewound = await asyncio.to_thread(_rewind_to_zero, settings)
        assert rewound > 0, "no recorded position to rewind"
        again = stack.start("pipeline_worker")
        started = time.monotonic()
        await wait_until(
            lambda: again.output().count('"workflow_already_started"') >= len(ids),
            timeout=180,
            what="the rewound pipeline worker has asked for every start again",
            interval=0.5,
        )
        runs = await runs_per_workflow(client, stack.task_queue)
        rerun = figures(
            "7-rewind-position", settings, ids, runs, len(ids), time.monotonic() - started
        )
        rerun.print()
        assert rerun.runs == len(ids)
        assert rerun.duplicates == 0


async def _kill_and_restart_at_random(stack: Stack, uploads: asyncio.Task[object]) -> None:
    """``KILLS`` times, while the uploads run: wait a random moment, kill -9, restart."""
    for _ in range(KILLS):
        await asyncio.sleep(random.uniform(*KILL_AFTER))
        stack.kill9("pipeline_worker")
        await asyncio.sleep(random.uniform(0.0, 1.0))
        stack.start("pipeline_worker")
    if uploads.done():
        print("\n(note: the uploads finished before the last kill)")


def _rewind_to_zero(settings: Settings) -> int:
    """Deletes the pipeline worker's recorded positions; returns how many rows went."""
    if settings.event_store == "postgres":
        with psycopg.connect(
            host=settings.postgres_host,
            port=settings.postgres_port,
            dbname=settings.postgres_dbname,
            user=settings.postgres_user,
            password=settings.postgres_password.get_secret_value(),
            autocommit=True,
        ) as conn:
            tables = conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = %s AND table_name LIKE %s",
                (settings.postgres_schema, f"{CONSUMER}%tracking"),
            ).fetchall()
            deleted = 0
            for (table,) in tables:
                statement = sql.SQL("DELETE FROM {}.{}").format(
                    sql.Identifier(settings.postgres_schema), sql.Identifier(table)
                )
                cursor = conn.execute(statement)
                deleted += cursor.rowcount
            return deleted
    with sqlite3.connect(settings.sqlite_tracking_path(CONSUMER)) as conn:
        tables = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '%tracking%'"
        ).fetchall()
        # The names come from the catalogue, not from input.
        return sum(conn.execute(f'DELETE FROM "{table}"').rowcount for (table,) in tables)
