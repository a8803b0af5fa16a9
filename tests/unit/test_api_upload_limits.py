"""Hostile uploads through the real app: lying lengths, broken framing, floods of parts,
filenames meant to escape or to deceive. Each is refused or defused, and stores nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from domain.filenames import sanitise_filename
from infrastructure.api.uploads import FRAMING_ALLOWANCE
from tests.fakes import FakeCatalog
from tests.unit.test_api import (
    BOUNDARY,
    MAX_UPLOAD_BYTES,
    MULTIPART,
    Service,
    build,
    form,
    http_client,
    part,
    upload,
)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    service = build(tmp_path, catalog=FakeCatalog())
    yield service
    service.artifacts.close()


@pytest.fixture
async def client(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(service.app) as client:
        yield client


def nothing_stored(service: Service) -> bool:
    return service.blob_files() == [] and service.artifacts.recorder.max_notification_id() in (
        None,
        0,
    )


async def test_a_content_length_smaller_than_the_body_does_not_lift_the_limit(
    client: httpx.AsyncClient, service: Service
) -> None:
    chunks = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal chunks
        yield part("file", b"", filename="big")[:-2]
        for _ in range(64):
            chunks += 1
            yield b"x" * 1024

    request = client.build_request(
        "POST", "/artifacts", content=body(), headers={"Content-Type": MULTIPART}
    )
    request.headers["Content-Length"] = "100"  # a lie: the body is 64 KiB and more
    response = await client.send(request)

    assert response.status_code == 413
    assert chunks * 1024 <= MAX_UPLOAD_BYTES + 2 * 1024
    assert nothing_stored(service)


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data; boundary=not-the-boundary-in-the-body",
        'multipart/form-data; boundary="a\\"b"',
        "multipart/form-data; boundary=",
    ],
    ids=["mismatched", "quote-inside", "empty"],
)
async def test_a_malformed_or_mismatched_boundary_is_refused_and_stores_nothing(
    client: httpx.AsyncClient, service: Service, content_type: str
) -> None:
    response = await client.post(
        "/artifacts",
        content=form(part("file", b"hello", filename="a.txt")),
        headers={"Content-Type": content_type},
    )

    assert response.status_code in (400, 415)
    assert response.json()["error"] in ("bad_upload", "unsupported_media_type")
    assert nothing_stored(service)


async def test_a_boundary_longer_than_rfc_2046_allows_is_400(
    client: httpx.AsyncClient, service: Service
) -> None:
    boundary = "b" * 71  # RFC 2046: 1 to 70 characters
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\n'
        f"hello\r\n--{boundary}--\r\n"
    ).encode()

    response = await client.post(
        "/artifacts",
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )

    assert response.status_code == 400
    assert "boundary" in response.json()["detail"]
    assert nothing_stored(service)


async def test_thousands_of_parts_are_refused_early(
    client: httpx.AsyncClient, service: Service
) -> None:
    offered = 5000
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        for i in range(offered):
            sent += 1
            yield part(f"f{i}", b"v")
        yield f"--{BOUNDARY}--\r\n".encode()

    response = await client.post("/artifacts", content=body(), headers={"Content-Type": MULTIPART})

    assert response.status_code == 400
    assert "too many form parts" in response.json()["detail"]
    assert sent < offered
    assert nothing_stored(service)


async def test_thousands_of_parts_before_the_file_are_refused_too(
    client: httpx.AsyncClient, service: Service
) -> None:
    # 800 tiny parts: under the body's byte limit, so only the part limit can refuse them.
    body = form(*(part(f"f{i}", b"") for i in range(800)), part("file", b"x", filename="a"))
    assert len(body) < MAX_UPLOAD_BYTES + FRAMING_ALLOWANCE

    response = await client.post("/artifacts", content=body, headers={"Content-Type": MULTIPART})

    assert response.status_code == 400
    assert nothing_stored(service)


@pytest.mark.parametrize(
    ("filename", "stored"),
    [
        ("../../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\cmd.exe", "cmd.exe"),
        ("/absolute/path.txt", "path.txt"),
        ("..", "unnamed"),
        ("....//....//x.txt", "x.txt"),
        ("nul\x00byte.txt", "nul_byte.txt"),
        ("bell\x07esc\x1b[31mred.txt", "bell_esc_[31mred.txt"),
        ("del\x7fc1\x85\x9f.txt", "del_c1_.txt"),
        ("invoice\u202etxt.exe", "invoice_txt.exe"),
        ("zero\u200bwidth.txt", "zero_width.txt"),
        ("line\u2028sep.txt", "line_sep.txt"),
    ],
    ids=[
        "dot-dot",
        "backslashes",
        "absolute",
        "only-dots",
        "doubled-dots",
        "nul",
        "escape-sequence",
        "c1-controls",
        "rtl-override",
        "zero-width",
        "line-separator",
    ],
)
async def test_a_hostile_filename_is_stored_as_a_harmless_display_name(
    client: httpx.AsyncClient, service: Service, filename: str, stored: str
) -> None:
    response = await upload(client, b"payload", filename=filename)

    assert response.status_code == 202
    view = (await client.get(response.headers["Location"])).json()
    assert view["filename"] == stored
    assert service.all_files() == [service.blob_root / b for b in service.blob_files()]


def test_a_sanitised_filename_has_no_separators_or_invisible_characters() -> None:
    hostile = 'a/b\\c:d*e?f"g<h>i|j\x00k\x1fl\x7fm\x9bn\u202eo\ufeffp.txt'

    name = sanitise_filename(hostile)

    assert name == "c_d_e_f_g_h_i_j_k_l_m_n_o_p.txt"
