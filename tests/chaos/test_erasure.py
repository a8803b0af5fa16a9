"""19. Files whose name and content carry a unique marker are processed, then deleted
through the API: afterwards the marker is in none of the event store's files or tables,
the read model, the blob store, the tracking stores, the key store, the processes' logs,
or the Temporal histories of their runs (checked before the deletes too: the search finds
it while it is there). The owner then gets 410, the other tenant 404.

20. Delete during extraction: a long PDF deleted while its pages are being read. The run is
cancelled, the artifact erased once it has stopped, and no blob of it is left.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from uuid import UUID

from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from domain.artifact import ArtifactStatus, workflow_id_for
from infrastructure.config import Settings
from infrastructure.temporal.models import EXTRACT_CONTENT
from tests import corpus
from tests.chaos.stack import (
    SMALL,
    Figures,
    reader,
    running_stack,
    upload_file,
    wait_all_processed,
)
from tests.chaos.tenants import (
    TenantKeys,
    files_holding,
    histories_holding,
    postgres_rows_holding,
)
from tests.chaos.test_temporal_worker_kill import PAGES, long_pdf
from tests.support import PROCESSES, running_on, wait_until

FILES = 3 if SMALL else 9


def marked_files(directory: Path, marker: str, count: int) -> list[tuple[str, bytes]]:
    """Text, Markdown and PDF files whose name and every page carry ``marker``."""
    prose = (
        f"Quarterly review for {marker}.\n\nThe account of {marker} shows steady growth in "
        f"every region; {marker} asked for the figures by Friday.\n"
    ) * 20
    files: list[tuple[str, bytes]] = []
    for i in range(count):
        match i % 3:
            case 0:
                files.append((f"{marker}-{i}.txt", prose.encode()))
            case 1:
                files.append((f"{marker}-{i}.md", f"# {marker}\n\n{prose}".encode()))
            case _:
                pdf = corpus.prose_pdf(directory, prose, name=f"{marker}-{i}.pdf")
                files.append((pdf.name, pdf.read_bytes()))
    return files


async def test_an_erased_artifact_leaves_no_trace_of_its_name_or_content(
    tmp_path: Path, settings: Settings, temporal_dev_env: WorkflowEnvironment
) -> None:
    client = temporal_dev_env.client
    keys = TenantKeys.new()
    marker = f"MRK{uuid.uuid4().hex[:16]}"
    scratch, run = tmp_path / "scratch", tmp_path / "run"
    scratch.mkdir()
    run.mkdir()
    files = marked_files(scratch, marker, FILES)
    overrides = {"API_KEYS": keys.setting}
    async with running_stack(settings, client, run, overrides=overrides) as stack:
        stack.modules["read_worker"] = PROCESSES["read_worker"]
        stack.start("read_worker")
        async with (
            keys.client(stack.api_url, "alpha") as alpha,
            keys.client(stack.api_url, "beta") as beta,
        ):
            ids = [await upload_file(alpha, name, content) for name, content in files]
            await wait_all_processed(settings, ids, timeout=300)

            async def listed() -> set[UUID]:
                page = (await alpha.get("/artifacts", params={"limit": "200"})).json()
                return {UUID(item["id"]) for item in page["items"]}

            async def all_listed() -> bool:
                return set(ids) <= await listed()

            await wait_until(all_listed, timeout=60, what="the read model lists every upload")
            workflows = [workflow_id_for(i) for i in ids]
            # The search finds the marker while it is there.
            assert files_holding(settings.data_dir / "blobs", marker.encode())
            before = await histories_holding(client, workflows, marker.encode())

            started = time.monotonic()
            answers = await asyncio.gather(*(alpha.delete(f"/artifacts/{i}") for i in ids))
            assert [a.status_code for a in answers] == [204] * len(ids), [a.text for a in answers]
            again = await alpha.delete(f"/artifacts/{ids[0]}")
            assert again.status_code == 204

            async def unlisted() -> bool:
                return not (await listed()) & set(ids)

            await wait_until(unlisted, timeout=60, what="the read model drops every erased row")
            erased_s = time.monotonic() - started
            owner = await alpha.get(f"/artifacts/{ids[0]}")
            other = await beta.get(f"/artifacts/{ids[0]}")
            assert (owner.status_code, owner.json().get("error")) == (410, "artifact_erased")
            assert other.status_code == 404
            reprocess = await alpha.post(f"/artifacts/{ids[0]}/reprocess")
            assert reprocess.status_code == 410
    # Every process has stopped: their logs and files are complete.
    left_in_files = files_holding(run, marker.encode()) + files_holding(
        settings.data_dir, marker.encode()
    )
    left_in_tables = (
        postgres_rows_holding(settings, marker) if settings.event_store == "postgres" else {}
    )
    left_in_histories = await histories_holding(client, workflows, marker.encode())
    app = reader(settings)
    try:
        erased = [app.get_artifact(i) for i in ids]
    finally:
        app.close()

    assert left_in_files == []
    assert left_in_tables == {}
    assert left_in_histories == []
    assert {artifact.status for artifact in erased} == {ArtifactStatus.ERASED}
    Figures(
        scenario="erasure",
        store=settings.event_store,
        uploads=len(ids),
        runs=len(workflows),
        duplicates=0,
        lost=0,
        recovery_s=erased_s,
        extra=f"erased={len(erased)} marker_in_files=0 marker_in_tables=0 "
        f"marker_in_histories=0 (before the deletes: {len(before)} histories, "
        f"the blobs held it)",
    ).print()


async def test_a_file_deleted_during_extraction_is_erased_once_its_run_stops(
    tmp_path: Path, settings: Settings, temporal_dev_env: WorkflowEnvironment
) -> None:
    client = temporal_dev_env.client
    keys = TenantKeys.new()
    overrides = {"API_KEYS": keys.setting, "PDF_MAX_PAGES": str(PAGES)}
    pdf = await asyncio.to_thread(long_pdf)
    async with (
        running_stack(settings, client, tmp_path, overrides=overrides) as stack,
        keys.client(stack.api_url, "alpha") as alpha,
    ):
        artifact_id = await upload_file(alpha, "long.pdf", pdf)
        workflow_id = workflow_id_for(artifact_id)

        async def extracting() -> bool:
            return await running_on(client, workflow_id, EXTRACT_CONTENT) is not None

        await wait_until(
            extracting,
            timeout=300,
            what="the PDF being extracted",
            interval=0.25,
        )
        deleted_at = time.monotonic()
        answer = await alpha.delete(f"/artifacts/{artifact_id}")
        assert answer.status_code == 202, answer.text
        assert answer.json()["status"] == "erasing"

        # Served no more at once; erased for good once its run has stopped.
        assert (await alpha.get(f"/artifacts/{artifact_id}")).status_code == 410
        app = await asyncio.to_thread(reader, settings)
        try:

            async def erased() -> bool:
                found = await asyncio.to_thread(app.get_artifact, artifact_id)
                return bool(found.status is ArtifactStatus.ERASED)

            await wait_until(erased, timeout=120, what="the artifact erased", interval=0.1)
        finally:
            app.close()
        erased_s = time.monotonic() - deleted_at
        handle = client.get_workflow_handle(workflow_id)

        async def closed() -> bool:
            return (await handle.describe()).status != WorkflowExecutionStatus.RUNNING

        await wait_until(closed, timeout=60, what="the run closed")
        run_status = (await handle.describe()).status

    app = reader(settings)
    try:
        history = [entry.type for entry in app.history(artifact_id)]
    finally:
        app.close()
    blobs = [path for path in (settings.data_dir / "blobs").rglob("*") if path.is_file()]

    assert run_status == WorkflowExecutionStatus.CANCELED
    assert history[-2:] == ["ProcessingCancelled", "ArtifactErased"]
    assert blobs == []
    Figures(
        scenario="delete_during_extraction",
        store=settings.event_store,
        uploads=1,
        runs=1,
        duplicates=0,
        lost=0,
        recovery_s=erased_s,
        extra="run_cancelled=1 blobs_left=0",
    ).print()
