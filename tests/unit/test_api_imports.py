"""The API process loads only what it runs: no parser, no image library, no workflow code.

Checked in a fresh interpreter, since this test process has long imported all of them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

WORKER_ONLY = [
    "magic",
    "PIL",
    "pypdfium2",
    "tesserocr",
    "infrastructure.temporal.activities",
    "infrastructure.temporal.workflows",
]

# Builds the app through the composition root, runs its lifespan and answers /ready, then
# reports what got loaded and what /ready said.
_API_PROCESS = textwrap.dedent(
    """
    import asyncio, json, sys

    import httpx

    from infrastructure.config import Settings
    from infrastructure.di.container import api_app

    async def temporal_reachable() -> None:
        pass

    async def main() -> int:
        settings = Settings(data_dir=sys.argv[1], event_store="sqlite", tracking_store="sqlite")
        app = api_app(settings, temporal_probe=temporal_reachable)
        transport = httpx.ASGITransport(app=app)
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                return (await client.get("/ready")).status_code

    status = asyncio.run(main())
    print(json.dumps({"ready": status, "loaded": [m for m in sys.argv[2:] if m in sys.modules]}))
    """
)


def test_building_and_serving_the_api_loads_no_worker_only_module(tmp_path: Path) -> None:
    finished = subprocess.run(
        [sys.executable, "-c", _API_PROCESS, str(tmp_path / "data"), *WORKER_ONLY],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).parents[2],
    )

    assert finished.returncode == 0, finished.stderr
    report = json.loads(finished.stdout.splitlines()[-1])
    assert report == {"ready": 200, "loaded": []}
