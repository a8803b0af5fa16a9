"""18. Two tenants on one deployment: every route with the other tenant's ids, and with
guessed ids, answers 404 exactly as an unknown id does (same body but for the id, latency
of the same class); lists, filters and cursors show only one's own; the Idempotency-Key and
sha256 dedupe paths never cross tenants. Figures: requests made, leaks (must be 0), median
latency of a 404 for another tenant's id and for an unknown one.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from temporalio.testing import WorkflowEnvironment

from infrastructure.config import Settings
from tests.chaos.stack import SMALL, Figures, running_stack, upload_file, wait_all_processed
from tests.chaos.tenants import TenantKeys
from tests.support import PROCESSES

FILES = 3 if SMALL else 10
# Every route that takes an artifact id.
ROUTES = [
    ("GET", ""),
    ("GET", "/content"),
    ("GET", "/text"),
    ("GET", "/markdown"),
    ("GET", "/chunks"),
    ("GET", "/pages"),
    ("POST", "/reprocess"),
    ("POST", "/cancel"),
    ("DELETE", ""),
]


def without_id(body: Any, artifact_id: UUID) -> Any:
    """The problem's body with the id it names replaced: what must not differ."""
    return _replaced(body, str(artifact_id))


def _replaced(value: Any, text: str) -> Any:
    if isinstance(value, str):
        return value.replace(text, "ID")
    if isinstance(value, dict):
        return {key: _replaced(item, text) for key, item in value.items()}
    if isinstance(value, list):
        return [_replaced(item, text) for item in value]
    return value


async def listed(http: httpx.AsyncClient, **params: str) -> list[UUID]:
    """Every artifact the list shows the caller, page by page (two a page)."""
    found: list[UUID] = []
    cursor: str | None = None
    while True:
        query = {"limit": "2", **params, **({"cursor": cursor} if cursor else {})}
        response = await http.get("/artifacts", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        found.extend(UUID(item["id"]) for item in page["items"])
        if not (cursor := page["next_cursor"]):
            return found


async def test_no_route_lets_one_tenant_see_or_touch_anothers_artifacts(
    tmp_path: Path, settings: Settings, temporal_dev_env: WorkflowEnvironment
) -> None:
    keys = TenantKeys.new()
    overrides = {"API_KEYS": keys.setting, "DEDUPE_BY_SHA256": "true"}
    async with running_stack(
        settings, temporal_dev_env.client, tmp_path, overrides=overrides
    ) as stack:
        stack.modules["read_worker"] = PROCESSES["read_worker"]
        stack.start("read_worker")
        async with (
            keys.client(stack.api_url, "alpha") as alpha,
            keys.client(stack.api_url, "beta") as beta,
        ):
            ids: dict[str, list[UUID]] = {"alpha": [], "beta": []}
            for tenant, http in (("alpha", alpha), ("beta", beta)):
                for i in range(FILES):
                    content = f"{tenant} note {i} {uuid.uuid4()}\n".encode()
                    ids[tenant].append(await upload_file(http, f"{tenant}-{i}.txt", content))
            # The same bytes from both tenants (sha256 dedupe), and the same Idempotency-Key
            # with other bytes: two artifacts each time, and each retry finds its own.
            # Unique to this run: the ids they derive must be new to the Temporal server.
            same, shared_key = f"same {uuid.uuid4()}".encode(), f"shared-{uuid.uuid4()}"
            for key in (None, shared_key):
                answers = [
                    await http.post(
                        "/artifacts",
                        files={"file": ("same.txt", f"{tenant} {key}\n".encode() if key else same)},
                        headers={"Idempotency-Key": key} if key else {},
                    )
                    for tenant, http in (("alpha", alpha), ("beta", beta))
                ]
                assert [r.status_code for r in answers] == [202, 202], [r.text for r in answers]
                first, second = (UUID(r.json()["id"]) for r in answers)
                assert first != second
                ids["alpha"].append(first)
                ids["beta"].append(second)
                again = await alpha.post(
                    "/artifacts",
                    files={"file": ("again.txt", f"alpha {key}\n".encode() if key else same)},
                    headers={"Idempotency-Key": key} if key else {},
                )
                assert (again.status_code, UUID(again.json()["id"])) == (200, first)
            await wait_all_processed(settings, ids["alpha"] + ids["beta"], timeout=300)

            requests = leaks = 0
            latencies: dict[str, list[float]] = {"other": [], "unknown": []}
            probes = [("other", i) for i in ids["beta"]] + [
                ("unknown", uuid.uuid4()) for _ in ids["beta"]
            ]
            references: dict[tuple[str, str], Any] = {}
            for kind, artifact_id in probes:
                for method, suffix in ROUTES:
                    started = time.perf_counter()
                    response = await alpha.request(method, f"/artifacts/{artifact_id}{suffix}")
                    latencies[kind].append(time.perf_counter() - started)
                    requests += 1
                    body = without_id(response.json(), artifact_id)
                    reference = references.setdefault((method, suffix), body)
                    if response.status_code != 404 or body != reference:
                        leaks += 1
                        print(f"LEAK {method} {suffix} {response.status_code} {response.text}")
            # Lists, filters and cursors: only one's own.
            assert set(await listed(alpha)) == set(ids["alpha"])
            assert set(await listed(alpha, status="processed")) == set(ids["alpha"])
            assert set(await listed(alpha, mime_type="text/plain")) == set(ids["alpha"])
            beta_page = (await beta.get("/artifacts", params={"limit": "1"})).json()
            from_betas_cursor = await alpha.get(
                "/artifacts", params={"cursor": beta_page["next_cursor"]}
            )
            assert set(UUID(item["id"]) for item in from_betas_cursor.json()["items"]) <= set(
                ids["alpha"]
            )
            requests += 5
            # Nothing of beta's was touched by alpha's deletes, cancels and reprocesses.
            views = await asyncio.gather(*(beta.get(f"/artifacts/{i}") for i in ids["beta"]))
            assert {view.json()["status"] for view in views} == {"processed"}
            assert {view.json()["run"] for view in views} == {0}

    assert leaks == 0
    Figures(
        scenario="tenant_isolation",
        store=settings.event_store,
        uploads=len(ids["alpha"]) + len(ids["beta"]),
        runs=len(ids["alpha"]) + len(ids["beta"]),
        duplicates=0,
        lost=0,
        recovery_s=0.0,
        extra=f"requests={requests} leaks={leaks} "
        f"p50_404_other={statistics.median(latencies['other']) * 1000:.1f}ms "
        f"p50_404_unknown={statistics.median(latencies['unknown']) * 1000:.1f}ms",
    ).print()
