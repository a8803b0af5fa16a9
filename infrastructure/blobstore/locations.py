"""The shape of a blob location, the same on every store, so events stay store-agnostic.

A location is ``3f/3f2a…``: 32 hex digits the server chose, under a directory (or key
prefix) of their first two. An unfinished write is listed as ``tmp/3f2a…``. Both are
checked on the way back in, so no caller-supplied string ever becomes a path or a key.
"""

from __future__ import annotations

import re
import uuid

LOCATION = re.compile(r"[0-9a-f]{2}/[0-9a-f]{32}")
TEMPORARY = re.compile(r"tmp/[0-9a-f]{32}")


def new_name() -> str:
    """A fresh server-chosen name: 32 hex digits."""
    return uuid.uuid4().hex


def location_of(name: str) -> str:
    """Where the blob called ``name`` is stored."""
    return f"{name[:2]}/{name}"


def temporary_location_of(name: str) -> str:
    """How an unfinished write of the blob called ``name`` is listed."""
    return f"tmp/{name}"
