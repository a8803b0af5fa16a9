"""17. Hostile images through the whole stack: a PNG declaring 10¹⁰ pixels, a TIFF whose
second page declares 10¹⁰ pixels, a TIFF of 5000 pages, a truncated PNG. Each is refused by
the image parser's child process before any pixel of it is decoded (the frames are counted
only up to ``IMAGE_MAX_FRAMES``, each frame's size checked before it is read) and recorded
as ``failed`` with its reason after exactly one attempt of the extract activity; the
Temporal worker never dies, then OCRs a good scan, and records a scan of grey noise as
``processed`` with the ``no_text`` warning (never a silent empty success).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
from PIL import Image, ImageDraw, ImageFont
from temporalio.testing import WorkflowEnvironment

from domain.artifact import workflow_id_for
from infrastructure.config import Settings
from infrastructure.di.container import default_blob_store
from infrastructure.processing.text import read_text
from infrastructure.temporal.models import EXTRACT_CONTENT
from tests import corpus
from tests.chaos.stack import (
    figures,
    outcomes,
    reader,
    running_stack,
    runs_per_workflow,
    upload_file,
    wait_all_processed,
)
from tests.support import last_attempt

# Each file, its name, and the failure reason the artifact must record.
HOSTILE: dict[str, tuple[Callable[[Path], Path], str, str]] = {
    "pixel-bomb": (corpus.pixel_bomb_png, "bomb.png", "too_large"),
    "bomb-on-page-2": (corpus.huge_frame_tiff, "huge-frame.tiff", "too_large"),
    "5000-pages": (
        lambda directory: corpus.many_frames_tiff(directory, 5000),
        "many.tiff",
        "too_many_pages",
    ),
    "truncated": (corpus.truncated_png, "truncated.png", "corrupt"),
}
GOOD_TEXT = "The worker reads this scan"


def good_scan() -> bytes:
    image = Image.new("L", (1700, 500), 255)
    font = ImageFont.load_default(size=48)
    ImageDraw.Draw(image).text((100, 200), GOOD_TEXT, font=font, fill=0)
    data = io.BytesIO()
    image.save(data, format="PNG", dpi=(200, 200))
    return data.getvalue()


async def test_hostile_images_fail_with_a_reason_in_one_attempt_and_the_worker_lives_on(
    tmp_path: Path, settings: Settings, temporal_dev_env: WorkflowEnvironment
) -> None:
    client = temporal_dev_env.client
    files = {name: make(tmp_path).read_bytes() for name, (make, _, _) in HOSTILE.items()}
    async with running_stack(settings, client, tmp_path) as stack:
        worker = stack.processes["temporal_worker"]
        started_at = psutil.Process(worker.pid).create_time()
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as http:
            ids = {
                name: await upload_file(http, HOSTILE[name][1], data)
                for name, data in files.items()
            }
            artifacts = await outcomes(settings, list(ids.values()))
            attempts = {
                name: await last_attempt(client, workflow_id_for(i), EXTRACT_CONTENT)
                for name, i in ids.items()
            }
            same_worker = worker.exit_code is None and (
                psutil.Process(worker.pid).create_time() == started_at
            )
            good_id = await upload_file(http, "scan.png", good_scan())
            noise = corpus.blank_scan_pdf(tmp_path, noise=True).read_bytes()
            noise_id = await upload_file(http, "noise.pdf", noise)
        good_s = await wait_all_processed(settings, [good_id, noise_id], timeout=300)
        runs = await runs_per_workflow(client, stack.task_queue)
        app = reader(settings)
        try:
            good = app.get_artifact(good_id)
            illegible = app.get_artifact(noise_id)
        finally:
            app.close()
    good_text = read_text(default_blob_store(settings), good.text_locations, max_chars=10_000)

    all_ids = [*ids.values(), good_id, noise_id]
    result = figures("17-hostile-images", settings, all_ids, runs, len(all_ids), good_s)
    reasons = {name: artifacts[i].failure_reason for name, i in ids.items()}
    result.extra = f"worker_pid_unchanged={same_worker} good_scans_after={good_s:.1f}s"
    result.print()
    for name, attempt in attempts.items():
        print(
            f"  {name} ({len(files[name])} bytes): reason={reasons[name]} "
            f"attempts={attempt.attempt} seconds={attempt.seconds:.1f}"
        )
    assert reasons == {name: reason for name, (_, _, reason) in HOSTILE.items()}
    assert {(a.attempt, a.outcome) for a in attempts.values()} == {(1, "failed")}
    assert same_worker
    assert GOOD_TEXT in good_text
    assert good.warnings == []
    assert (illegible.char_count, illegible.warnings) == (0, ["no_text"])
    assert result.runs == len(all_ids)
    assert result.duplicates == 0
