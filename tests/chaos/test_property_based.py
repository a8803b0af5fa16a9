"""10. Property-based: requests generated from the API's own OpenAPI document, with and
without the API key, get documented answers (status, content type, body schema), never a
5xx, and never a 2xx without the key but from ``GET /health``.

Schemathesis runs as its command line does (``schemathesis run``) against the real API
process, with every check (tests/chaos/schemathesis.toml names the few it skips, and why) and the
hooks of tests/chaos/schemathesis_hooks.py: the unauthenticated-2xx check, and artifacts uploaded
and processed beforehand, so that results, text and reprocessing are reached, not only 404s.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from infrastructure.config import Settings
from tests.chaos.stack import (
    SMALL,
    Figures,
    Stack,
    running_stack,
    runs_per_workflow,
    upload,
    wait_all_processed,
)
from tests.support import REPO_ROOT

# Cases per operation and phase; the small scale runs in well under two minutes per store.
MAX_EXAMPLES = 10 if SMALL else 100
KNOWN_ARTIFACTS = 3
SERVER_ERROR = "ST101"
UNAUTHENTICATED = "no_unauthenticated_success"


@dataclass
class Report:
    """What the JSON report of one ``schemathesis run`` says (failures are counted as
    Schemathesis counts them: once per distinct failure, however many cases hit it)."""

    operations: int
    cases: int
    server_errors: int
    violations: int
    unauthenticated: int
    failures: list[dict[str, Any]]
    errors: list[Any]

    @classmethod
    def of(cls, report: dict[str, Any]) -> Report:
        failures: list[dict[str, Any]] = report["failures"]

        def count(kind: str) -> int:
            return sum(f["count"] for f in failures if _kind(f) == kind)

        return cls(
            operations=report["operations"]["tested"],
            cases=report["test_cases"]["generated"],
            server_errors=count("5xx"),
            violations=count("violation"),
            unauthenticated=count("unauthenticated"),
            failures=failures,
            errors=report["errors"],
        )


def _kind(failure: dict[str, Any]) -> str:
    """5xx, unauthenticated 2xx, or else an answer the OpenAPI document does not allow
    (status, content type, headers, body schema, a refused valid request...)."""
    if failure["code"] == SERVER_ERROR:
        return "5xx"
    if UNAUTHENTICATED in failure["title"]:
        return "unauthenticated"
    return "violation"


@pytest.mark.timeout(1200)
async def test_generated_requests_get_documented_answers_and_nothing_succeeds_without_a_key(
    tmp_path: Path, settings: Settings, temporal_dev_env: WorkflowEnvironment
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    # A fresh key per run, never written anywhere but the processes' environments.
    keyed = settings.model_copy(update={"api_keys": SecretStr(secrets.token_urlsafe(24))})
    seed = int(os.environ.get("CHAOS_SEED") or secrets.randbelow(2**32))
    client = temporal_dev_env.client
    async with running_stack(keyed, client, logs) as stack:
        async with httpx.AsyncClient(
            base_url=stack.api_url, timeout=30, headers=stack.api_headers
        ) as http:
            ids = [await upload(http, i) for i in range(KNOWN_ARTIFACTS)]
        await wait_all_processed(keyed, ids, timeout=120)
        started = time.monotonic()
        with_key = await _schemathesis(stack, tmp_path, "with-key", seed, ids, key=True)
        without_key = await _schemathesis(stack, tmp_path, "without-key", seed, ids, key=False)
        took = time.monotonic() - started
        runs = await runs_per_workflow(client, stack.task_queue)
    both = (with_key, without_key)
    Figures(
        scenario="10-property-based",
        store=settings.event_store,
        uploads=len(ids),
        runs=sum(runs.values()),
        duplicates=sum(n - 1 for n in runs.values() if n > 1),
        lost=0,
        recovery_s=took,
        extra=(
            f"operations={with_key.operations} "
            f"cases={with_key.cases}+{without_key.cases} "
            f"5xx={sum(r.server_errors for r in both)} "
            f"schema_violations={sum(r.violations for r in both)} "
            f"unauthenticated_2xx={sum(r.unauthenticated for r in both)} "
            f"seed={seed} (recovery = both runs' wall time)"
        ),
    ).print()
    for report in both:
        assert not report.errors, report.errors
        assert not report.failures, json.dumps(report.failures, indent=2)
    assert with_key.operations == without_key.operations > 0
    assert all(n == 1 for n in runs.values()), "a workflow id ran more than once"


async def _schemathesis(
    stack: Stack, tmp_path: Path, name: str, seed: int, ids: list[UUID], *, key: bool
) -> Report:
    """``schemathesis run`` against the stack's API; its output goes to logs/<name>.txt."""
    report = tmp_path / f"schemathesis-{name}.json"
    headers = [f"--header=Authorization: {v}" for v in stack.api_headers.values()] if key else []
    args = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(REPO_ROOT / "tests" / "chaos" / "schemathesis.toml"),
        "run",
        f"{stack.api_url}/openapi.json",
        *headers,
        f"--max-examples={MAX_EXAMPLES}",
        f"--seed={seed}",
        "--workers=1",  # the machine is shared; one request at a time
        "--request-timeout=30",
        "--report=json",
        f"--report-json-path={report}",
        "--no-color",
    ]
    env = {
        **os.environ,
        # Run from the test's directory, so its cache (.schemathesis/) is not left in the
        # repository; the hooks module is found through PYTHONPATH.
        "PYTHONPATH": str(REPO_ROOT),
        "SCHEMATHESIS_HOOKS": "tests.chaos.schemathesis_hooks",
        "CHAOS_API_KEY": stack.settings.api_key_list[0],
        "CHAOS_ARTIFACT_IDS": ",".join(str(i) for i in ids),
    }
    with (tmp_path / "logs" / f"schemathesis-{name}.txt").open("wb") as output:
        finished = await asyncio.to_thread(
            subprocess.run,
            args,
            cwd=tmp_path,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=540,
            check=False,
        )
    assert report.exists(), f"schemathesis exited {finished.returncode} without a report"
    return Report.of(json.loads(report.read_text()))
