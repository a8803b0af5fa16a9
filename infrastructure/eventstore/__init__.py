"""Which event store the service uses, from settings, as eventsourcing environments.

``EVENT_STORE`` picks eventsourcing's own persistence module for the events:

- ``sqlite``: one file under DATA_DIR, with this package's polling subscription (sqlite.py);
- ``postgres``: ``eventsourcing.postgres``, events in ``artifacts_events``;
- ``kurrentdb`` (or ``eventstoredb``, its name before): ``eventsourcing_kurrentdb``, one
  stream per artifact.

``TRACKING_STORE`` picks where each consumer of the event stream (the pipeline worker, the
read worker) records its position: SQLite (a file per consumer under DATA_DIR) or
PostgreSQL (a ``<consumer>_tracking`` table). KurrentDB has no tracking recorder, so
with it the positions always live in one of those two. The artifacts' keys
(crypto-shredding, ``keys.py``) live there too, outside the events.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar, assert_never

from eventsourcing.persistence import (
    InfrastructureFactory,
    IntegrityError,
    InternalError,
    OperationalError,
)
from eventsourcing.utils import Environment

from application.ports import KeyStore
from infrastructure.config import Settings
from infrastructure.eventstore.dead_letters import DeadLetterStore

SQLITE_FACTORY = "infrastructure.eventstore.sqlite:Factory"
POSTGRES_FACTORY = "eventsourcing.postgres:Factory"
KURRENTDB_FACTORY = "eventsourcing_kurrentdb:KurrentDBFactory"
# SQLite waits this long (seconds) for another process's write lock before giving up.
SQLITE_LOCK_TIMEOUT = "30"
# Enough for every process that starts with the others on a fresh store (see below).
_CREATE_ATTEMPTS = 5

T = TypeVar("T")


def created_alongside_others(build: Callable[[], T]) -> T:
    """``build()``, again if it lost a race with another process to create the tables.

    eventsourcing creates its tables (and the tracking table's ``__migration__`` row) when a
    recorder is built. Processes that start together on a fresh store (``make dev`` starts
    the API and both workers at once; so do two pipeline workers) collide there: PostgreSQL's
    ``CREATE ... IF NOT EXISTS`` is not safe against itself (a duplicate key in its catalog,
    or "tuple concurrently updated"), and each inserts the migration row. The losers get
    ``IntegrityError`` or ``InternalError``; by then the tables exist. On a fresh SQLite
    file, switching it to WAL mode takes an exclusive lock that does not wait for others
    doing the same ("database is locked"): a moment later the file is in WAL mode.
    """
    for attempt in range(1, _CREATE_ATTEMPTS + 1):
        try:
            return build()
        except (IntegrityError, InternalError, OperationalError, sqlite3.OperationalError):
            if attempt == _CREATE_ATTEMPTS:
                raise
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


def _postgres_env(settings: Settings) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": POSTGRES_FACTORY,
        "POSTGRES_HOST": settings.postgres_host,
        "POSTGRES_PORT": str(settings.postgres_port),
        "POSTGRES_DBNAME": settings.postgres_dbname,
        "POSTGRES_USER": settings.postgres_user,
        "POSTGRES_PASSWORD": settings.postgres_password.get_secret_value(),
        "POSTGRES_SCHEMA": settings.postgres_schema,
    }


def _kurrentdb_env(settings: Settings) -> dict[str, str]:
    # Settings checked at start that the URI is there when this store is chosen.
    assert settings.kurrentdb_uri is not None
    # The names eventsourcing_kurrentdb's factory reads.
    env = {
        "PERSISTENCE_MODULE": KURRENTDB_FACTORY,
        "KURRENTDB_URI": settings.kurrentdb_uri.get_secret_value(),
    }
    if settings.kurrentdb_root_certificates:
        env["KURRENTDB_ROOT_CERTIFICATES"] = settings.kurrentdb_root_certificates
    return env


def application_env(settings: Settings) -> dict[str, str]:
    """The environment for ``ArtifactsApplication`` on the configured event store."""
    match settings.event_store:
        case "sqlite":
            return {
                "PERSISTENCE_MODULE": SQLITE_FACTORY,
                "SQLITE_DBNAME": str(settings.sqlite_path),
                "SQLITE_LOCK_TIMEOUT": SQLITE_LOCK_TIMEOUT,
                "SQLITE_POLL_INTERVAL": str(settings.sqlite_poll_interval),
            }
        case "postgres":
            return _postgres_env(settings)
        case "kurrentdb":
            return _kurrentdb_env(settings)
        case _:
            assert_never(settings.event_store)


def tracking_recorder(settings: Settings, consumer: str) -> DeadLetterStore:
    """Where ``consumer`` records how far through the event stream it has got, and the
    dead letters it passed on the way (``dead_letters.py``)."""
    recorder_class = dead_letter_tracking_class(settings)
    env = tracking_env(settings, consumer)
    return created_alongside_others(
        lambda: (
            InfrastructureFactory[DeadLetterStore].construct(env).tracking_recorder(recorder_class)
        )
    )


def dead_letter_tracking_class(settings: Settings) -> type[DeadLetterStore]:
    """The tracking recorder with a dead-letter table, on the configured tracking store."""
    match settings.tracking_store:
        case "postgres":
            # Imported only when chosen: psycopg needs libpq, which SQLite set-ups lack.
            from infrastructure.eventstore.postgres import PostgresDeadLetterTracking

            return PostgresDeadLetterTracking
        case "sqlite":
            from infrastructure.eventstore.sqlite import SQLiteDeadLetterTracking

            return SQLiteDeadLetterTracking
        case _:
            assert_never(settings.tracking_store)


def tracking_env(settings: Settings, consumer: str) -> Environment:
    """The environment of ``consumer``'s tracking store; a consumer whose tracking recorder
    is also its view (the read model) builds that recorder class from it."""
    match settings.tracking_store:
        case "postgres":
            env = _postgres_env(settings)
        case "sqlite":
            env = {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(settings.sqlite_tracking_path(consumer)),
                "SQLITE_LOCK_TIMEOUT": SQLITE_LOCK_TIMEOUT,
            }
        case _:
            assert_never(settings.tracking_store)
    return Environment(consumer, env)


def key_store(settings: Settings) -> KeyStore:
    """Where the artifacts' keys are kept (``keys.py``): beside the consumers' positions."""
    from infrastructure.eventstore.keys import PostgresKeyStore, SQLiteKeyStore

    match settings.tracking_store:
        case "postgres":
            from eventsourcing.postgres import PostgresDatastore

            datastore = PostgresDatastore(
                dbname=settings.postgres_dbname,
                host=settings.postgres_host,
                port=settings.postgres_port,
                user=settings.postgres_user,
                password=settings.postgres_password.get_secret_value(),
                schema=settings.postgres_schema,
            )
            return created_alongside_others(lambda: PostgresKeyStore(datastore))
        case "sqlite":
            path = settings.sqlite_tracking_path("keys")
            return created_alongside_others(lambda: SQLiteKeyStore(path))
        case _:
            assert_never(settings.tracking_store)
