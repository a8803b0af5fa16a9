"""All settings, read once from the environment (or a ``.env`` file).

Field names are the environment variable names (case-insensitive): ``TEMPORAL_ADDRESS``
sets ``temporal_address``. Every process of the service reads this one class.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Self

from pydantic import AliasChoices, Field, PrivateAttr, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from application.processing import SUPPORTED_TYPES
from domain.artifact import DEFAULT_TENANT, TENANT
from infrastructure import secret_files

if TYPE_CHECKING:
    from temporalio.envconfig import ClientConfigProfile

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Named once here; the worker polls it and the orchestrator starts workflows on it.
DEFAULT_TASK_QUEUE = "artifact_processing"


class TenantKey(NamedTuple):
    """An API key and the tenant whose artifacts it reaches."""

    tenant: str
    key: str


def tenant_keys(entries: str) -> list[TenantKey]:
    """The keys of API_KEYS or ADMIN_API_KEYS: comma-separated ``tenant:KEY`` entries, a
    bare ``KEY`` belonging to the tenant ``default``; blanks ignored.

    Raises ``ValueError`` naming the entry's position (never the key) for a tenant name
    that is not one (``domain.artifact.TENANT``), or an empty key.
    """
    keys: list[TenantKey] = []
    for position, entry in enumerate((e.strip() for e in entries.split(",")), start=1):
        if not entry:
            continue
        tenant, colon, key = entry.partition(":")
        if not colon:
            tenant, key = DEFAULT_TENANT, entry
        if not TENANT.fullmatch(tenant) or not key.strip():
            raise ValueError(
                f"entry {position} is not 'tenant:KEY' or a bare KEY: a tenant name is 1 to 63 "
                "of a-z, 0-9, '_' and '-' (starting with a letter or digit), and the key "
                "follows the first ':'"
            )
        keys.append(TenantKey(tenant, key.strip()))
    return keys


def check_keys(api_keys: list[TenantKey], admin_keys: list[TenantKey]) -> None:
    """Refuses (``ValueError``) a key given to two tenants: which would it reach?"""
    tenants: dict[str, str] = {}
    for entry in [*api_keys, *admin_keys]:
        if tenants.setdefault(entry.key, entry.tenant) != entry.tenant:
            raise ValueError(
                f"a key of tenant {entry.tenant!r} is also given to tenant {tenants[entry.key]!r}"
            )


# The URI schemes kurrentdbclient accepts (esdb is EventStoreDB's, kurrentdb its new name's).
_KURRENTDB_SCHEMES = frozenset(
    {"esdb", "esdb+discover", "kurrentdb", "kurrentdb+discover", "kdb", "kdb+discover"}
)
# The parts of POSTGRES_DSN that eventsourcing's PostgreSQL factory can take, by setting.
_DSN_FIELDS = {
    "host": "postgres_host",
    "port": "postgres_port",
    "dbname": "postgres_dbname",
    "user": "postgres_user",
    "password": "postgres_password",
}


class Settings(BaseSettings):
    # Errors name the setting but never echo inputs: they may hold passwords (POSTGRES_DSN).
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", hide_input_in_errors=True)

    # Everything the service stores locally (blobs, SQLite databases) lives under here.
    data_dir: Path = PROJECT_ROOT / "data"

    # The event store: "sqlite" (embedded default, a file under DATA_DIR), "postgres" or
    # "kurrentdb" (EventStoreDB's new name; "eventstoredb" is still read as it); each is
    # eventsourcing's own persistence module (eventstore/__init__.py).
    event_store: Literal["sqlite", "postgres", "kurrentdb"] = "sqlite"
    # Where the consumers of the event stream (pipeline worker, read worker) record their
    # positions. KurrentDB has no tracking recorder, so with it they live here. Unset: the
    # event store itself when it is sqlite or postgres, else sqlite (see _default_tracking).
    tracking_store: Literal["sqlite", "postgres"] = "sqlite"
    # A consumer whose subscription has delivered nothing for this long while events it
    # follows are waiting resubscribes (EventStoreDB's catch-up subscription can stall).
    subscription_stall_seconds: float = Field(default=30, gt=0)
    # How often the SQLite subscription looks for new events (it has no push channel).
    sqlite_poll_interval: float = Field(default=0.1, gt=0, le=10)
    postgres_host: str = "127.0.0.1"
    postgres_port: int = 5432
    postgres_dbname: str = "postgres"
    postgres_user: str = "postgres"
    postgres_password: SecretStr = SecretStr("")
    # Lets several deployments (or test runs) share one database without sharing tables.
    postgres_schema: str = "public"
    # Alternative to the five settings above: postgresql://user:password@host:port/dbname (or
    # "host=... dbname=..."); the parts it names win. TLS and the like: libpq's PGSSLMODE etc.
    postgres_dsn: SecretStr | None = None
    # Such as esdb://localhost:2113?Tls=false, or kurrentdb://user:password@host:2113 (TLS).
    # EVENTSTOREDB_URI, its name before KurrentDB, is read too (KURRENTDB_URI wins).
    kurrentdb_uri: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("kurrentdb_uri", "eventstoredb_uri")
    )
    # PEM text of the CA that signed the server's certificate, when the system's CAs did not
    # (the URI's TlsCaFile=/path does the same from a file). Or EVENTSTOREDB_ROOT_CERTIFICATES.
    kurrentdb_root_certificates: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "kurrentdb_root_certificates", "eventstoredb_root_certificates"
        ),
    )

    # The Temporal connection: the SDK's environment configuration (temporalio.envconfig),
    # whose variables these are; a TOML profile (TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE)
    # fills what they leave unset. See _resolve_temporal and docs/deployment.md.
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    # Temporal Cloud's API key (sent as a bearer token; TLS turns on with it).
    temporal_api_key: SecretStr | None = None
    # TLS: on with any of the settings below or an API key; TEMPORAL_TLS=false forces it off.
    temporal_tls: bool | None = None
    # mTLS: the client's certificate and key (PEM files), for a secured cluster or Cloud.
    temporal_tls_client_cert_path: Path | None = None
    temporal_tls_client_key_path: Path | None = None
    # The CA that signed the server's certificate, when the system's CAs did not.
    temporal_tls_server_ca_cert_path: Path | None = None
    # The name the server's certificate is for, when not the address's host.
    temporal_tls_server_name: str | None = None
    temporal_profile: str | None = None
    temporal_config_file: Path | None = None
    temporal_task_queue: str = DEFAULT_TASK_QUEUE
    temporal_ui_url: str = "http://127.0.0.1:8233"
    # Every run is closed by Temporal (timed out) past this; well above the longest
    # legitimate run (a 1000-page PDF's extraction retried three times takes under an hour).
    workflow_execution_timeout_seconds: float = Field(default=6 * 3600, gt=0)

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # Comma-separated API keys, sent as "Authorization: Bearer KEY", each naming its tenant
    # ("alpha:KEY1,beta:KEY2"; a bare KEY belongs to the tenant "default"): a key reaches
    # its tenant's artifacts only. Unset: anonymous access, as the one tenant "default",
    # which the API allows only on a loopback API_HOST unless ALLOW_ANONYMOUS=true.
    api_keys: SecretStr = SecretStr("")
    # Comma-separated admin keys, named the same way: they reach every tenant's artifacts
    # (what they upload is their own tenant's), and they alone the admin routes (GET
    # /dead-letters, retrying one). With neither API_KEYS nor these set, the admin routes
    # are as open as the rest (anonymous loopback development).
    admin_api_keys: SecretStr = SecretStr("")
    allow_anonymous: bool = False
    # An upload with the same bytes (sha256) as an earlier one of the same client gets that
    # artifact back instead of a new one (when it sends no Idempotency-Key).
    dedupe_by_sha256: bool = False
    max_upload_bytes: int = Field(default=100 * 1024 * 1024, gt=0)
    # Per-tenant limits, 0 = off. Uploads a tenant may start per minute, counted by each API
    # process on its own (429 with Retry-After past it); and the bytes its artifacts may
    # take in all, as the read model counts them (403 storage_quota_exceeded).
    tenant_uploads_per_minute: int = Field(default=0, ge=0)
    tenant_storage_bytes: int = Field(default=0, ge=0)

    # How many workflow starts the pipeline worker keeps in flight at once; positions are
    # still recorded strictly in event order.
    pipeline_max_in_flight: int = Field(default=16, ge=1, le=1000)
    # Threads for the Temporal worker's (blocking) activities.
    activity_threads: int = Field(default=8, ge=1, le=256)
    # How long a stopping worker lets running activities finish (SIGTERM grace).
    shutdown_grace_seconds: float = Field(default=20, ge=0)

    # Processing. Comma-separated MIME types; others fail with reason unsupported_type.
    # Empty: every type the pipeline can process (PDF, text-like, images, office, HTML, e-mail).
    allowed_mime_types: str = ""
    # Pages beyond this fail with too_many_pages, before any page is read.
    pdf_max_pages: int = Field(default=1000, ge=1)
    pdf_page_batch: int = Field(default=25, ge=1)
    # The PDF parser runs in a child process with these limits (hostile PDFs).
    pdf_cpu_seconds: int = Field(default=60, ge=1)
    pdf_memory_mb: int = Field(default=1024, ge=64)
    pdf_timeout_seconds: int = Field(default=120, ge=1)
    text_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    image_max_pixels: int = Field(default=89_478_485, ge=1)
    # Frames (pages) of a multi-page image beyond this fail with too_many_pages, before any
    # frame is decoded.
    image_max_frames: int = Field(default=1000, ge=1)
    # OCR (Tesseract): "auto" reads pages without a usable text layer (scans, images),
    # "force" every page, "off" none. OCR_LANGUAGES in Tesseract's form ("eng", "eng+deu"),
    # each installed as Debian's tesseract-ocr-<lang> (`make install-tesseract`).
    ocr: Literal["auto", "off", "force"] = "auto"
    ocr_languages: str = Field(default="eng", pattern=r"^~?[A-Za-z0-9_]+(\+~?[A-Za-z0-9_]+)*$")
    # Tesseract's deadline for one page: a page past it keeps the words read by then, and the
    # result warns ocr_timeout.
    ocr_page_timeout_seconds: float = Field(default=20, gt=0, le=600)
    # ZIP-based documents (DOCX, XLSX, PPTX, ODF) are checked before parsing: more members,
    # more declared bytes or a member compressing better than this fail with too_large.
    office_max_members: int = Field(default=10_000, ge=1)
    office_max_uncompressed_mb: int = Field(default=256, ge=1)
    office_max_compression_ratio: int = Field(default=100, ge=2)
    # Spreadsheet cells read over a whole workbook (XLSX, ODS); the rest is cut, noted as
    # the truncated fact and warning.
    spreadsheet_max_cells: int = Field(default=500_000, ge=1)
    # The most characters of one chunk of a document's text (GET /artifacts/{id}/chunks):
    # heading-aware chunks, a longer block split at sentence or word boundaries.
    chunk_chars: int = Field(default=2000, ge=100, le=100_000)
    # "lexrank" works offline and deterministically; "openai" calls any OpenAI-compatible
    # chat endpoint (OPENAI_BASE_URL, OPENAI_API_KEY, OPENAI_MODEL).
    summarizer: Literal["lexrank", "openai"] = "lexrank"
    summary_sentences: int = Field(default=3, ge=1, le=50)
    openai_base_url: str | None = None
    openai_api_key: SecretStr | None = None
    openai_model: str | None = None
    openai_timeout_seconds: float = Field(default=60, gt=0)
    # Recorded with every summary, so results can be told apart after the pipeline improves.
    pipeline_version: str = "1"
    # How long GET /artifacts waits for the read model to show this API's own writes.
    read_model_wait_seconds: float = Field(default=1.0, ge=0)

    # Prometheus endpoints (http://METRICS_HOST:port/metrics) of the workers, one port each
    # so that `make dev` runs them side by side; 0 turns one off. The API serves /metrics.
    metrics_host: str = "127.0.0.1"
    pipeline_worker_metrics_port: int = Field(default=9465, ge=0, le=65535)
    read_worker_metrics_port: int = Field(default=9466, ge=0, le=65535)
    # The Temporal SDK's own metrics (task latencies, slots, polls); empty turns them off.
    temporal_worker_metrics_address: str = "127.0.0.1:9464"

    # Reconciliation: a Temporal Schedule, created by the Temporal worker, runs
    # ReconcileArtifactsWorkflow this often. An artifact whose run closed without an outcome
    # gets one at the next tick, so within this interval plus one pass (well under 60 s).
    reconcile_interval_seconds: float = Field(default=15, gt=0, le=50)
    # A run the pipeline worker has not started (no workflow under its id) is started by
    # the reconciler only once its upload (or reprocessing request) is this old, so that
    # the pipeline worker's normal lag is not raced.
    reconcile_redrive_after_seconds: float = Field(default=30, ge=0)
    # Artifacts one reconciling activity looks at (one page of the read model).
    reconcile_batch_size: int = Field(default=100, ge=1, le=1000)

    # Retention: artifacts older than this many days are erased (ArtifactErased, reason
    # "retention") by a Temporal Schedule every RETENTION_SWEEP_SECONDS; 0 keeps them for
    # ever. Fractions are allowed (the fault suite uses seconds' worth).
    retention_days: float = Field(default=0, ge=0)
    retention_sweep_seconds: float = Field(default=3600, gt=0)
    # Artifacts one retention activity erases at most (one page of the read model).
    retention_batch_size: int = Field(default=100, ge=1, le=1000)

    # Object storage: where uploads and extracted text are kept. "local": a directory under
    # DATA_DIR, which every process must see (one host, or a shared volume); "s3": a bucket
    # of any S3-compatible store, which lets the API and the workers live on separate hosts.
    blob_store: Literal["local", "s3"] = "local"
    s3_bucket: str | None = None
    # Unset: AWS S3 itself; for another S3-compatible store its URL (http://host:8333).
    s3_endpoint_url: str | None = None
    # Keys under this prefix (several deployments or test runs in one bucket).
    s3_prefix: str = ""
    # The standard AWS variables. Unset: boto3's own chain (shared files, instance role).
    aws_access_key_id: str | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_region: str | None = None
    # Uploads go up in parts of this size (S3's minimum is 5); one part is held in memory
    # per upload in flight.
    s3_part_size_mb: int = Field(default=8, ge=5, le=512)
    s3_timeout_seconds: float = Field(default=30, gt=0)
    # Connections to the store per process: at least the threads that read or write blobs.
    s3_max_connections: int = Field(default=32, ge=1, le=1000)
    _temporal_profile: ClientConfigProfile | None = PrivateAttr(default=None)

    log_level: str = "INFO"
    # "json" for machines, "console" for people; unset: console on a terminal, else json.
    log_format: Literal["json", "console"] | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Secrets from files (secret_files.py): X_FILE after the environment and .env,
        # SECRETS_DIR last, so that whatever is set explicitly wins over a mounted file.
        return secret_files.sources(
            settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
        )

    @model_validator(mode="before")
    @classmethod
    def _default_tracking(cls, data: Any) -> Any:
        if isinstance(data, dict) and str(data.get("event_store")).lower() == "eventstoredb":
            data = {**data, "event_store": "kurrentdb"}  # the name before KurrentDB
        if isinstance(data, dict) and data.get("tracking_store") in (None, ""):
            store = str(data.get("event_store") or "sqlite").lower()
            data = {**data, "tracking_store": "postgres" if store == "postgres" else "sqlite"}
        return data

    @model_validator(mode="after")
    def _check_connections(self) -> Self:
        # Fail at start, naming the setting, rather than at the first event.
        if self.postgres_dsn is not None:
            self._apply_postgres_dsn(self.postgres_dsn.get_secret_value())
        self._check_blob_store()
        if self.summarizer == "openai" and not (self.openai_base_url and self.openai_model):
            raise ValueError("SUMMARIZER=openai needs OPENAI_BASE_URL and OPENAI_MODEL")
        if self.event_store == "kurrentdb":
            if self.kurrentdb_uri is None or not self.kurrentdb_uri.get_secret_value():
                raise ValueError(
                    "EVENT_STORE=kurrentdb (or eventstoredb) needs KURRENTDB_URI "
                    "(or EVENTSTOREDB_URI), such as esdb://localhost:2113?Tls=false"
                )
            scheme = self.kurrentdb_uri.get_secret_value().partition("://")[0].lower()
            if scheme not in _KURRENTDB_SCHEMES:
                raise ValueError(
                    f"KURRENTDB_URI must start with one of "
                    f"{', '.join(s + '://' for s in sorted(_KURRENTDB_SCHEMES))}"
                )
        return self

    @model_validator(mode="after")
    def _check_api_keys(self) -> Self:
        # Refused at start, naming the setting: a typo in a tenant name would otherwise
        # put a client's uploads in a tenant nobody reads.
        for name, value in (("API_KEYS", self.api_keys), ("ADMIN_API_KEYS", self.admin_api_keys)):
            try:
                tenant_keys(value.get_secret_value())
            except ValueError as err:
                raise ValueError(f"{name}: {err}") from None
        check_keys(self.api_tenant_keys, self.admin_tenant_keys)
        return self

    @model_validator(mode="after")
    def _check_ocr(self) -> Self:
        # A parser child OCRs a page only when its limits leave room for the page's worst
        # case; with less than that, no page could ever be read. (Light: loads no engine.)
        from infrastructure.processing.ocr import OcrOptions, page_allowance

        worst = page_allowance(OcrOptions(page_timeout_seconds=self.ocr_page_timeout_seconds))
        if self.ocr != "off" and worst >= min(self.pdf_cpu_seconds, self.pdf_timeout_seconds):
            raise ValueError(
                f"OCR_PAGE_TIMEOUT_SECONDS={self.ocr_page_timeout_seconds:g} leaves no room for "
                f"a page within PDF_CPU_SECONDS and PDF_TIMEOUT_SECONDS (a page may take "
                f"{worst:g} s): lower it or raise those"
            )
        return self

    def _check_blob_store(self) -> None:
        if self.blob_store != "s3":
            return
        if not self.s3_bucket:
            raise ValueError("BLOB_STORE=s3 needs S3_BUCKET (and S3_ENDPOINT_URL unless on AWS)")
        if self.s3_endpoint_url and not self.s3_endpoint_url.startswith(("http://", "https://")):
            raise ValueError("S3_ENDPOINT_URL must start with http:// or https://")
        if bool(self.aws_access_key_id) != bool(self.aws_secret_access_key):
            raise ValueError("set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither")

    @model_validator(mode="after")
    def _resolve_temporal(self) -> Self:
        # One source of truth: the SDK resolves its profile from these settings (wherever
        # they came from: environment, .env, *_FILE) over the TOML file, and the address
        # and namespace it resolves are the ones every part of the service then uses.
        from infrastructure.temporal.profile import load_profile

        profile = load_profile(self)
        if "temporal_address" not in self.model_fields_set and profile.address:
            self.temporal_address = profile.address
        if "temporal_namespace" not in self.model_fields_set and profile.namespace:
            self.temporal_namespace = profile.namespace
        self._temporal_profile = profile
        return self

    @property
    def temporal_client_profile(self) -> ClientConfigProfile:
        """The Temporal client profile resolved at start (TLS, API key, gRPC metadata);
        the address and namespace to use are ``temporal_address`` and ``temporal_namespace``."""
        assert self._temporal_profile is not None  # set by _resolve_temporal
        return self._temporal_profile

    def _apply_postgres_dsn(self, dsn: str) -> None:
        # Imported only when a DSN is given: psycopg needs libpq, and the SQLite default
        # must start on a machine without it.
        from psycopg.conninfo import conninfo_to_dict

        try:
            parts = conninfo_to_dict(dsn)
        except Exception as err:  # psycopg names the problem; the DSN itself may hold a secret
            raise ValueError(f"POSTGRES_DSN is not a valid connection string: {err}") from None
        unsupported = sorted(set(parts) - set(_DSN_FIELDS))
        if unsupported:
            raise ValueError(
                f"POSTGRES_DSN: {', '.join(unsupported)} not supported here; "
                "use libpq's environment variables (PGSSLMODE, ...) instead"
            )
        for key, value in parts.items():
            if key == "password":
                self.postgres_password = SecretStr(str(value))
            elif key == "port":
                self.postgres_port = int(str(value))
            else:
                setattr(self, _DSN_FIELDS[key], str(value))

    @property
    def allowed_types(self) -> frozenset[str]:
        """The MIME types processed: ALLOWED_MIME_TYPES within what the pipeline supports."""
        chosen = {t.strip().lower() for t in self.allowed_mime_types.split(",") if t.strip()}
        return frozenset(chosen) if chosen else SUPPORTED_TYPES

    @property
    def api_tenant_keys(self) -> list[TenantKey]:
        """The API keys from API_KEYS with their tenants (``tenant_keys``)."""
        return tenant_keys(self.api_keys.get_secret_value())

    @property
    def admin_tenant_keys(self) -> list[TenantKey]:
        """The admin keys from ADMIN_API_KEYS with their tenants (``tenant_keys``)."""
        return tenant_keys(self.admin_api_keys.get_secret_value())

    @property
    def api_key_list(self) -> list[str]:
        """The API keys from API_KEYS, without their tenants: what a client sends."""
        return [entry.key for entry in self.api_tenant_keys]

    @property
    def admin_api_key_list(self) -> list[str]:
        """The admin keys from ADMIN_API_KEYS, without their tenants."""
        return [entry.key for entry in self.admin_tenant_keys]

    @property
    def s3_key_prefix(self) -> str:
        """S3_PREFIX as a key prefix: empty, or ending with one slash."""
        prefix = self.s3_prefix.strip("/")
        return f"{prefix}/" if prefix else ""

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "events.sqlite3"

    def sqlite_tracking_path(self, consumer: str) -> Path:
        """Each consumer of the event stream keeps its position in its own SQLite file."""
        return self.data_dir / f"{consumer}.sqlite3"


def environment_names() -> frozenset[str]:
    """Every environment variable the settings read: their names, the older names still
    read (EVENTSTOREDB_URI), ``X_FILE`` beside each secret one, and ``SECRETS_DIR``."""
    return secret_files.environment_names(Settings)
