"""What the tenant and erasure scenarios share: two tenants' keys, their HTTP clients, and
a search for a marker everywhere the service keeps anything."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql
from temporalio.client import Client

from infrastructure.config import Settings
from tests.support.stores import POSTGRES

TENANTS = ("alpha", "beta")


@dataclass(frozen=True)
class TenantKeys:
    """Each tenant's API key, and the ``API_KEYS`` setting naming them."""

    keys: dict[str, str]

    @classmethod
    def new(cls) -> TenantKeys:
        return cls({tenant: f"key-{tenant}-{uuid.uuid4().hex}" for tenant in TENANTS})

    @property
    def setting(self) -> str:
        return ",".join(f"{tenant}:{key}" for tenant, key in self.keys.items())

    def client(self, api_url: str, tenant: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=api_url,
            timeout=60,
            headers={"Authorization": f"Bearer {self.keys[tenant]}"},
        )


def files_holding(root: Path, marker: bytes) -> list[Path]:
    """Every file under ``root`` whose bytes hold ``marker``."""
    return [
        path
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink() and marker in path.read_bytes()
    ]


def postgres_rows_holding(settings: Settings, marker: str) -> dict[str, int]:
    """Per table of the settings' schema, the rows holding ``marker`` in any column (as
    text, or as bytes: a bytea column reads as hex)."""
    found: dict[str, int] = {}
    hexed = marker.encode().hex()
    with POSTGRES.connect() as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (settings.postgres_schema,),
        ).fetchall()
        for (table,) in tables:
            name = sql.Identifier(settings.postgres_schema, table)
            query = sql.SQL(
                "SELECT count(*) FROM {} AS t WHERE t::text LIKE %s OR t::text LIKE %s"
            ).format(name)
            try:
                (count,) = conn.execute(query, (f"%{marker}%", f"%{hexed}%")).fetchone() or (0,)
            except psycopg.Error:
                conn.rollback()
                continue
            if count:
                found[table] = count
    return found


async def histories_holding(client: Client, workflow_ids: list[str], marker: bytes) -> list[str]:
    """The workflows whose history holds ``marker``, in clear or in any payload (payloads
    are base64 in a history's JSON)."""
    holding = []
    for workflow_id in workflow_ids:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        text = history.to_json()
        if marker in text.encode() or any(
            marker in data for data in _payload_data(json.loads(text))
        ):
            holding.append(workflow_id)
    return holding


def _payload_data(value: Any) -> Iterator[bytes]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "data" and isinstance(item, str) and _BASE64.fullmatch(item):
                with contextlib.suppress(ValueError):
                    yield base64.b64decode(item)
            else:
                yield from _payload_data(item)
    elif isinstance(value, list):
        for item in value:
            yield from _payload_data(item)


_BASE64 = re.compile(r"[A-Za-z0-9+/=]+")
