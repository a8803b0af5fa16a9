"""9. Bad HTTP input gets a 4xx quickly, never a 5xx, and writes nothing outside the data
directory. The list is the suite's: add a case whenever a new way in is found."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from infrastructure.config import Settings
from tests.chaos.stack import Figures, running_stack
from tests.support import REPO_ROOT

BOUNDARY = "chaosboundary"
# (what, method, path, headers, body, the status it must get)
CASES: list[tuple[str, str, str, dict[str, str], bytes, int]] = [
    ("not multipart", "POST", "/artifacts", {"Content-Type": "application/json"}, b"{}", 415),
    ("no body", "POST", "/artifacts", {}, b"", 415),
    (
        "multipart without a boundary",
        "POST",
        "/artifacts",
        {"Content-Type": "multipart/form-data"},
        b"x",
        415,
    ),
    (
        "multipart with no file part",
        "POST",
        "/artifacts",
        {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=other\r\n\r\nx\r\n"
        f"--{BOUNDARY}--\r\n".encode(),
        400,
    ),
    (
        "truncated multipart",
        "POST",
        "/artifacts",
        {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="a.txt"\r\n\r\nhalf a fi'.encode(),
        400,
    ),
    (
        "boundary longer than RFC 2046 allows",
        "POST",
        "/artifacts",
        {"Content-Type": f"multipart/form-data; boundary={'b' * 200}"},
        b"x",
        400,
    ),
    (
        "oversized idempotency key",
        "POST",
        "/artifacts",
        {
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            "Idempotency-Key": "k" * 300,
        },
        b"",
        400,
    ),
    ("artifact id not a UUID", "GET", "/artifacts/not-a-uuid", {}, b"", 422),
    ("unknown artifact", "GET", f"/artifacts/{uuid.uuid4()}", {}, b"", 404),
    ("path traversal in the path", "GET", "/artifacts/..%2F..%2Fetc%2Fpasswd", {}, b"", 404),
    ("unsupported method", "DELETE", "/artifacts", {}, b"", 405),
]


def _traversal_upload() -> tuple[dict[str, str], bytes]:
    """A file whose name climbs out of the data directory; the service must keep the bytes
    in its blob store and the name as mere data."""
    body = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="../../../../chaos-escaped.txt"\r\nContent-Type: text/plain\r\n\r\n'
        f"escaped?\r\n--{BOUNDARY}--\r\n"
    ).encode()
    return {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}, body


async def test_bad_http_input_gets_a_documented_4xx_fast_and_writes_nothing_outside_data(
    tmp_path: Path, settings: Settings, temporal_dev_env: WorkflowEnvironment
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    before = _files_outside(tmp_path, settings.data_dir)
    async with running_stack(settings, temporal_dev_env.client, logs) as stack:
        slowest = 0.0
        wrong: list[str] = []
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=10) as http:
            for what, method, path, headers, body, expected in CASES:
                started = time.monotonic()
                response = await http.request(method, path, headers=headers, content=body)
                took = time.monotonic() - started
                slowest = max(slowest, took)
                if response.status_code != expected or took > 1.0:
                    wrong.append(f"{what}: {response.status_code} in {took:.2f} s")
            headers, body = _traversal_upload()
            response = await http.post("/artifacts", headers=headers, content=body)
            assert response.status_code < 500, response.text
    after = _files_outside(tmp_path, settings.data_dir)
    Figures(
        scenario="9-bad-http-input",
        store=settings.event_store,
        uploads=len(CASES) + 1,
        runs=0,
        duplicates=0,
        lost=0,
        recovery_s=slowest,
        extra=f"wrong={len(wrong)} (recovery = slowest answer)",
    ).print()
    assert not wrong, wrong
    assert after == before, f"written outside the data directory: {after - before}"
    escaped = [p for r in (REPO_ROOT, tmp_path.parents[1]) for p in r.rglob("chaos-escaped*")]
    assert not escaped, escaped


def _files_outside(tmp_path: Path, data_dir: Path) -> set[Path]:
    """Files under the test session's directories, the data directory and logs aside.

    The repository is searched only for the hostile name: a developer may be editing it.
    """
    skip = (data_dir, tmp_path / "logs")
    found = set()
    for root in (tmp_path.parent,):
        for path in root.rglob("*"):
            cache = "__pycache__" in path.parts or ".mypy_cache" in path.parts
            if path.is_file() and not cache and not any(path.is_relative_to(s) for s in skip):
                found.add(path)
    return found
