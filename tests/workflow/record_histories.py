"""Re-records the workflow histories that the replay tests check the workflow against.

Run it after an intended, compatible change to ``ProcessArtifactWorkflow``:

    uv run --no-sync python -m tests.workflow.record_histories

An incompatible change must not simply re-record: the histories stand for runs already
in flight in production, which the new code has to replay (use ``workflow.patched``).
"""

from __future__ import annotations

import asyncio

from tests.support import start_time_skipping
from tests.workflow.harness import HISTORIES, RECORDED_SCENARIOS, run_scenario


async def record_all() -> list[str]:
    env = await start_time_skipping()
    try:
        written = []
        HISTORIES.mkdir(exist_ok=True)
        for name in RECORDED_SCENARIOS:
            history = await run_scenario(env.client, name)
            path = HISTORIES / f"{name}.json"
            path.write_text(history.to_json() + "\n")
            written.append(str(path))
        return written
    finally:
        await env.shutdown()


def main() -> None:
    for path in asyncio.run(record_all()):
        print(f"recorded {path}")


if __name__ == "__main__":
    main()
