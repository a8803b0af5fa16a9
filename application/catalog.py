"""The read side: listing artifacts from a view that follows the event store.

Standard library only. The view is eventually consistent: it lags the event store by
however long the read worker takes to project a write. A client that must see its own
write waits for the view to reach the write's position (``wait_for``), or reads the
aggregate itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from domain.artifact import DEFAULT_TENANT


class InvalidCursor(ValueError):  # noqa: N818 - a domain word
    """The cursor was not one this catalog handed out."""


@dataclass(frozen=True)
class ArtifactRow:
    """One artifact as a list shows it: what it is and how far processing got."""

    id: UUID
    filename: str
    status: str
    mime_type: str | None
    size: int
    page_count: int | None
    failure_reason: str | None
    has_summary: bool
    created_at: datetime
    updated_at: datetime
    tenant: str = DEFAULT_TENANT


@dataclass(frozen=True)
class ArtifactPage:
    """One page of a list, newest first; ``next_cursor`` is None on the last page."""

    items: list[ArtifactRow]
    next_cursor: str | None


class ArtifactCatalog(Protocol):
    """Lists artifacts, newest first, from the read model."""

    def list_artifacts(
        self,
        *,
        status: str | None,
        mime_type: str | None,
        limit: int,
        cursor: str | None,
        tenant: str | None,
    ) -> ArtifactPage:
        """Up to ``limit`` artifacts (``limit`` >= 1) older than ``cursor``, newest first.

        ``tenant``, ``status`` and ``mime_type`` filter when given (no ``tenant``: every
        tenant's, which only an admin is shown). ``cursor`` is None for the first
        page, else the ``next_cursor`` of the page before. An artifact's place in the
        order (created_at, then id) never changes, so following the cursors never shows
        one twice or skips one, even while new ones arrive (they sort before page one).
        Raises ``InvalidCursor`` for a cursor this catalog did not hand out.
        """
        ...

    def wait_for(self, position: int, timeout: float) -> bool:
        """Waits up to ``timeout`` seconds until the view has processed the event store's
        notification ``position``; True once it has, False when the time ran out.
        """
        ...

    def stored_bytes(self, tenant: str) -> int:
        """The sizes of the tenant's artifacts (those not erased), summed: its quota's use."""
        ...

    def created_before(self, cutoff: datetime, limit: int) -> list[UUID]:
        """Up to ``limit`` ids of artifacts created before ``cutoff``, oldest first (every
        tenant's): what a retention period erases."""
        ...
