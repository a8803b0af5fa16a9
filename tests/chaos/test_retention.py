"""21. Retention with a tiny period: artifacts older than it are erased on the schedule
(``ArtifactErased``, reason ``retention``), and those uploaded later are untouched until
they are old enough. Figures: erased, untouched, and how long after its expiry the last
old artifact was erased.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from uuid import UUID

import httpx
from temporalio.testing import WorkflowEnvironment

from domain.artifact import ArtifactStatus
from infrastructure.config import Settings
from tests.chaos.stack import SMALL, Figures, reader, running_stack, upload, wait_all_processed
from tests.support import PROCESSES, wait_until

FILES = 3 if SMALL else 10
PERIOD_S = 30.0


async def test_artifacts_past_the_retention_period_are_erased_on_schedule(
    tmp_path: Path, settings: Settings, temporal_dev_env: WorkflowEnvironment
) -> None:
    overrides = {
        "RETENTION_DAYS": repr(PERIOD_S / 86400),
        "RETENTION_SWEEP_SECONDS": "2",
    }
    app = await asyncio.to_thread(reader, settings)
    try:
        async with running_stack(
            settings, temporal_dev_env.client, tmp_path, overrides=overrides
        ) as stack:
            stack.modules["read_worker"] = PROCESSES["read_worker"]
            stack.start("read_worker")
            async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
                started = time.monotonic()
                old = [await upload(http, i) for i in range(FILES)]
                await wait_all_processed(settings, old, timeout=300)
                # Younger ones, uploaded well before the old ones expire.
                await asyncio.sleep(max(0.0, started + PERIOD_S / 2 - time.monotonic()))
                young = [await upload(http, FILES + i) for i in range(FILES)]

                def erased(ids: list[UUID]) -> int:
                    return sum(app.get_artifact(i).status is ArtifactStatus.ERASED for i in ids)

                async def old_erased() -> bool:
                    return await asyncio.to_thread(erased, old) == len(old)

                await wait_until(
                    old_erased, timeout=PERIOD_S + 120, what="the old artifacts erased"
                )
                late_s = time.monotonic() - (started + PERIOD_S)
                young_erased = await asyncio.to_thread(erased, young)
                reasons = {(app.get_artifact(i).erasure or {}).get("reason") for i in old}
    finally:
        app.close()

    assert young_erased == 0
    assert reasons == {"retention"}
    Figures(
        scenario="retention",
        store=settings.event_store,
        uploads=len(old) + len(young),
        runs=len(old) + len(young),
        duplicates=0,
        lost=0,
        recovery_s=late_s,
        extra=f"erased={len(old)} untouched={len(young) - young_erased} "
        f"period={PERIOD_S:.0f}s sweep_every=2s",
    ).print()
