"""16. Hostile office files through the whole stack, good documents uploaded between them:
a zip bomb (1 GiB of zeros in a DOCX, 1000-fold), a member lying about its size, billion
laughs and an external entity in a DOCX part, a password-protected DOCX, and Word, Excel
and PowerPoint 97-2003 files. Each is recorded ``failed`` with its reason after exactly
one attempt of the step that refused it (extract for the first four, inspect for the
rest); every good document around them (DOCX, XLSX, PPTX, ODT, HTML, e-mail) is
``processed``; the Temporal worker never dies (same PID, same start time).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
from temporalio.testing import WorkflowEnvironment

from domain.artifact import ArtifactStatus, workflow_id_for
from infrastructure.config import Settings
from infrastructure.temporal.models import EXTRACT_CONTENT, INSPECT_ARTIFACT
from tests import office_corpus as corpus
from tests.chaos.stack import figures, outcomes, running_stack, runs_per_workflow, upload_file
from tests.support import last_attempt

# Each hostile file: the reason its artifact must record, and the step that refuses it.
HOSTILE: dict[str, tuple[Callable[[Path], Path], str, str]] = {
    "bomb.docx": (corpus.zip_bomb_docx_file, "too_large", EXTRACT_CONTENT),
    "lying.docx": (corpus.lying_member_docx, "corrupt", EXTRACT_CONTENT),
    "laughs.docx": (corpus.billion_laughs_docx, "corrupt", EXTRACT_CONTENT),
    "external.docx": (corpus.external_entity_docx, "corrupt", EXTRACT_CONTENT),
    "encrypted.docx": (corpus.encrypted_docx, "encrypted", INSPECT_ARTIFACT),
    "old.doc": (corpus.legacy_doc, "unsupported_type", INSPECT_ARTIFACT),
    "old.xls": (corpus.legacy_xls, "unsupported_type", INSPECT_ARTIFACT),
    "old.ppt": (corpus.legacy_ppt, "unsupported_type", INSPECT_ARTIFACT),
}
GOOD: list[Callable[[Path], Path]] = [
    corpus.docx_file,
    corpus.xlsx_file,
    corpus.pptx_file,
    corpus.odt_file,
    corpus.html_file,
    corpus.eml_file,
]


async def test_hostile_office_files_fail_with_their_reason_in_one_attempt_among_good_ones(
    tmp_path: Path, settings: Settings, temporal_dev_env: WorkflowEnvironment
) -> None:
    client = temporal_dev_env.client
    files = tmp_path / "files"
    files.mkdir()
    hostile = {name: make(files) for name, (make, _, _) in HOSTILE.items()}
    good = [make(files) for make in GOOD]
    # Good and hostile files alternate, so each hostile one has good neighbours in flight.
    order: list[Path] = []
    for index, path in enumerate(hostile.values()):
        order.append(path)
        if index < len(good):
            order.append(good[index])
    async with running_stack(settings, client, tmp_path) as stack:
        worker = stack.processes["temporal_worker"]
        started_at = psutil.Process(worker.pid).create_time()
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as http:
            ids = {
                path.name: await upload_file(http, path.name, path.read_bytes()) for path in order
            }
            artifacts = await outcomes(settings, list(ids.values()))
            attempts = {
                name: await last_attempt(client, workflow_id_for(ids[name]), step)
                for name, (_, _, step) in HOSTILE.items()
            }
            same_worker = worker.exit_code is None and (
                psutil.Process(worker.pid).create_time() == started_at
            )
        runs = await runs_per_workflow(client, stack.task_queue)

    seconds = max(attempt.seconds for attempt in attempts.values())
    # Every upload has an outcome: none is lost (the good ones are checked below).
    result = figures(
        "16-hostile-office-files", settings, list(ids.values()), runs, len(ids), seconds
    )
    result.extra = f"worker_pid_unchanged={same_worker}"
    result.print()
    for name, attempt in attempts.items():
        artifact = artifacts[ids[name]]
        print(
            f"  {name} ({hostile[name].stat().st_size} bytes): reason={artifact.failure_reason} "
            f"attempts={attempt.attempt} seconds={attempt.seconds:.1f}"
        )
    assert {name: artifacts[ids[name]].failure_reason for name in HOSTILE} == {
        name: reason for name, (_, reason, _) in HOSTILE.items()
    }
    assert {(a.attempt, a.outcome) for a in attempts.values()} == {(1, "failed")}
    assert {artifacts[ids[path.name]].status for path in good} == {ArtifactStatus.PROCESSED}
    assert same_worker
    assert result.runs == len(ids)
    assert result.duplicates == 0
