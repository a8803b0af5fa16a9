"""The read model: the artifact list the API reads, projected from the event store.

- projection.py: ``ArtifactListProjection``, what each Artifact event changes;
- view.py: ``ArtifactListView``, rows and position in one transaction, read as the
  ``ArtifactCatalog`` port (application/catalog.py);
- sqlite.py, postgres.py: that view in each tracking store.

The view lives where TRACKING_STORE says the read model's position lives (chosen by
``infrastructure.eventstore.tracking_env``, as for every consumer): SQLite in
``<DATA_DIR>/read_model.sqlite3``, PostgreSQL in POSTGRES_SCHEMA. With EVENT_STORE=eventstoredb
that is the only choice; with sqlite or postgres it follows the event store by default.
"""

from __future__ import annotations

from typing import assert_never

from eventsourcing.persistence import InfrastructureFactory

from infrastructure.config import Settings
from infrastructure.eventstore import created_alongside_others, tracking_env
from infrastructure.read_model.projection import VIEW_STORE, ArtifactListProjection
from infrastructure.read_model.sqlite import SQLiteArtifactList
from infrastructure.read_model.view import APPLICATION, ArtifactListView


def artifact_catalog(settings: Settings) -> ArtifactListView:
    """The artifact list on the configured tracking store, its tables created if missing.

    The API reads it as its ``ArtifactCatalog``; the read worker writes it. Each call opens
    its own connections (``close()`` closes them): build one per process.
    """
    view_class: type[ArtifactListView]
    match settings.tracking_store:
        case "sqlite":
            view_class = SQLiteArtifactList
        case "postgres":
            # Imported only when chosen: psycopg needs libpq, which SQLite set-ups lack.
            from infrastructure.read_model.postgres import PostgresArtifactList

            view_class = PostgresArtifactList
        case _:
            assert_never(settings.tracking_store)
    env = tracking_env(settings, VIEW_STORE)
    return created_alongside_others(
        lambda: InfrastructureFactory[ArtifactListView].construct(env).tracking_recorder(view_class)
    )


__all__ = [
    "APPLICATION",
    "VIEW_STORE",
    "ArtifactListProjection",
    "ArtifactListView",
    "artifact_catalog",
]
