"""The ingest baseline: a bare FastAPI endpoint that only streams the upload to disk.

Run by the harness as ``uvicorn bench.bare_upload:app``; ``BENCH_UPLOAD_DIR`` is where the
files go. No event store, no hashing, no MIME sniffing: what FastAPI and uvicorn cost alone.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, File, UploadFile

UPLOAD_DIR = Path(os.environ.get("BENCH_UPLOAD_DIR", "bench-uploads"))
CHUNK = 1024 * 1024

app = FastAPI()


@app.post("/artifacts", status_code=201)
def upload(file: Annotated[UploadFile, File()]) -> dict[str, str]:
    # A plain def route: FastAPI runs it in its thread pool, so blocking writes are fine.
    name = uuid.uuid4().hex
    with (UPLOAD_DIR / name).open("wb") as out:
        while chunk := file.file.read(CHUNK):
            out.write(chunk)
    return {"id": name}
