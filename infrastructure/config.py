"""All settings, read once from the environment (or a ``.env`` file).

Field names are the environment variable names (case-insensitive): ``TEMPORAL_ADDRESS``
sets ``temporal_address``. Every process of the service reads this one class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Named once here; the worker polls it and the orchestrator starts workflows on it.
DEFAULT_TASK_QUEUE = "artifact_processing"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # Everything the service stores locally (blobs, SQLite databases) lives under here.
    data_dir: Path = PROJECT_ROOT / "data"

    # The event store: "sqlite" (embedded default, a file under DATA_DIR) or "postgres".
    event_store: Literal["sqlite", "postgres"] = "sqlite"
    # How often the SQLite subscription looks for new events (it has no push channel).
    sqlite_poll_interval: float = Field(default=0.1, gt=0, le=10)
    postgres_host: str = "127.0.0.1"
    postgres_port: int = 5432
    postgres_dbname: str = "postgres"
    postgres_user: str = "postgres"
    postgres_password: SecretStr = SecretStr("")
    # Lets several deployments (or test runs) share one database without sharing tables.
    postgres_schema: str = "public"

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = DEFAULT_TASK_QUEUE
    temporal_ui_url: str = "http://127.0.0.1:8233"

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    max_upload_bytes: int = Field(default=100 * 1024 * 1024, gt=0)

    # How many workflow starts the pipeline worker keeps in flight at once; positions are
    # still recorded strictly in event order.
    pipeline_max_in_flight: int = Field(default=16, ge=1, le=1000)
    # Threads for the Temporal worker's (blocking) activities.
    activity_threads: int = Field(default=8, ge=1, le=256)
    # How long a stopping worker lets running activities finish (SIGTERM grace).
    shutdown_grace_seconds: float = Field(default=20, ge=0)

    log_level: str = "INFO"
    # "json" for machines, "console" for people; unset: console on a terminal, else json.
    log_format: Literal["json", "console"] | None = None

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "events.sqlite3"

    def sqlite_tracking_path(self, consumer: str) -> Path:
        """Each consumer of the event stream keeps its position in its own SQLite file."""
        return self.data_dir / f"{consumer}.sqlite3"
