"""Which event store the service uses, from settings, as eventsourcing environments.

SQLite keeps the events in one file under DATA_DIR; each consumer of the event stream
(the pipeline worker, later the read worker) keeps its position in a file of its own.
PostgreSQL keeps both in one database: events in ``artifacts_events``, positions in
``<consumer>_tracking`` tables.
"""

from __future__ import annotations

from eventsourcing.persistence import InfrastructureFactory, TrackingRecorder
from eventsourcing.utils import Environment

from infrastructure.config import Settings

SQLITE_FACTORY = "infrastructure.eventstore.sqlite:Factory"
POSTGRES_FACTORY = "eventsourcing.postgres:Factory"
# SQLite waits this long (seconds) for another process's write lock before giving up.
SQLITE_LOCK_TIMEOUT = "30"


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


def application_env(settings: Settings) -> dict[str, str]:
    """The environment for ``ArtifactsApplication`` on the configured event store."""
    if settings.event_store == "postgres":
        return _postgres_env(settings)
    return {
        "PERSISTENCE_MODULE": SQLITE_FACTORY,
        "SQLITE_DBNAME": str(settings.sqlite_path),
        "SQLITE_LOCK_TIMEOUT": SQLITE_LOCK_TIMEOUT,
        "SQLITE_POLL_INTERVAL": str(settings.sqlite_poll_interval),
    }


def tracking_recorder(settings: Settings, consumer: str) -> TrackingRecorder:
    """Where ``consumer`` records how far through the event stream it has got."""
    if settings.event_store == "postgres":
        env = _postgres_env(settings)
    else:
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(settings.sqlite_tracking_path(consumer)),
            "SQLITE_LOCK_TIMEOUT": SQLITE_LOCK_TIMEOUT,
        }
    factory = InfrastructureFactory[TrackingRecorder].construct(Environment(consumer, env))
    return factory.tracking_recorder()
