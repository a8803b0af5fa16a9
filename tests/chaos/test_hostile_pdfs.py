"""8. Hostile PDFs through the whole stack: a decompression bomb, a cyclic page tree, a
cross-reference claiming 2**31 - 1 objects (/Size) and a cross-reference whose /Prev is
itself. Each is contained by the parser's child-process limits and recorded as ``failed``
with its reason after exactly one attempt of the extract activity (the failure is
non-retryable); the Temporal worker never dies (same PID, same start time) and still
processes a good file afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
from temporalio.testing import WorkflowEnvironment

from domain.artifact import workflow_id_for
from infrastructure.config import Settings
from infrastructure.temporal.models import EXTRACT_CONTENT
from tests import corpus
from tests.chaos.stack import (
    figures,
    outcomes,
    running_stack,
    runs_per_workflow,
    upload_file,
    wait_all_processed,
)
from tests.support import last_attempt

# Each file, and the failure reason the artifact must record.
HOSTILE: dict[str, tuple[Callable[[Path], Path], str]] = {
    "decompression-bomb": (corpus.decompression_bomb_pdf, "too_large"),
    "cyclic-page-tree": (corpus.cyclic_page_tree_pdf, "corrupt"),
    "huge-size": (corpus.huge_xref_pdf, "corrupt"),
    "looping-xref": (corpus.looping_xref_pdf, "corrupt"),
}


async def test_hostile_pdfs_fail_with_a_reason_in_one_attempt_and_the_worker_lives_on(
    tmp_path: Path, settings: Settings, temporal_dev_env: WorkflowEnvironment
) -> None:
    client = temporal_dev_env.client
    files = {name: make(tmp_path).read_bytes() for name, (make, _) in HOSTILE.items()}
    good = corpus.text_pdf(tmp_path, 3).read_bytes()
    async with running_stack(settings, client, tmp_path) as stack:
        worker = stack.processes["temporal_worker"]
        started_at = psutil.Process(worker.pid).create_time()
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as http:
            ids = {
                name: await upload_file(http, f"{name}.pdf", data) for name, data in files.items()
            }
            artifacts = await outcomes(settings, list(ids.values()))
            attempts = {
                name: await last_attempt(client, workflow_id_for(i), EXTRACT_CONTENT)
                for name, i in ids.items()
            }
            same_worker = worker.exit_code is None and (
                psutil.Process(worker.pid).create_time() == started_at
            )
            good_id = await upload_file(http, "good.pdf", good)
        good_s = await wait_all_processed(settings, [good_id], timeout=300)
        runs = await runs_per_workflow(client, stack.task_queue)

    all_ids = [*ids.values(), good_id]
    result = figures("8-hostile-pdfs", settings, all_ids, runs, len(all_ids), good_s)
    reasons = {name: artifacts[i].failure_reason for name, i in ids.items()}
    result.extra = f"worker_pid_unchanged={same_worker} good_file_after={good_s:.1f}s"
    result.print()
    for name, attempt in attempts.items():
        print(
            f"  {name} ({len(files[name])} bytes): reason={reasons[name]} "
            f"attempts={attempt.attempt} seconds={attempt.seconds:.1f}"
        )
    assert reasons == {name: reason for name, (_, reason) in HOSTILE.items()}
    assert {(a.attempt, a.outcome) for a in attempts.values()} == {(1, "failed")}
    assert same_worker
    assert result.runs == len(all_ids)
    assert result.duplicates == 0
