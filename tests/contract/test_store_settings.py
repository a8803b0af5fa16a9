"""Choosing the event store: one setting, its connection settings, and clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from eventsourcing.postgres import PostgresFactory
from eventsourcing.sqlite import SQLiteTrackingRecorder
from eventsourcing.utils import resolve_topic
from eventsourcing_kurrentdb import KurrentDBFactory
from pydantic import ValidationError

from infrastructure.config import Settings, environment_names
from infrastructure.eventstore import application_env, tracking_recorder
from infrastructure.eventstore.sqlite import Factory as SubscribableSQLiteFactory

ESDB = "esdb://localhost:2113?Tls=false"


def settings_from_env(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    """Settings as a process started with exactly these variables would read them."""
    for name in environment_names():
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_sqlite_is_the_default_for_events_and_positions(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from_env(monkeypatch)
    assert (settings.event_store, settings.tracking_store) == ("sqlite", "sqlite")
    assert resolve_topic(application_env(settings)["PERSISTENCE_MODULE"]) is (
        SubscribableSQLiteFactory
    )


def test_postgres_keeps_positions_in_postgres_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert settings_from_env(monkeypatch, EVENT_STORE="postgres").tracking_store == "postgres"
    settings = settings_from_env(monkeypatch, EVENT_STORE="postgres", TRACKING_STORE="sqlite")
    assert settings.tracking_store == "sqlite"
    assert resolve_topic(application_env(settings)["PERSISTENCE_MODULE"]) is PostgresFactory


def test_kurrentdb_maps_to_its_factory_and_keeps_positions_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_from_env(
        monkeypatch,
        EVENT_STORE="kurrentdb",
        KURRENTDB_URI=ESDB,
        KURRENTDB_ROOT_CERTIFICATES="-----BEGIN CERTIFICATE-----",
    )
    env = application_env(settings)
    assert resolve_topic(env["PERSISTENCE_MODULE"]) is KurrentDBFactory
    assert env["KURRENTDB_URI"] == ESDB
    assert env["KURRENTDB_ROOT_CERTIFICATES"] == "-----BEGIN CERTIFICATE-----"
    assert settings.tracking_store == "sqlite"  # KurrentDB has no tracking recorder
    pg = settings_from_env(
        monkeypatch, EVENT_STORE="kurrentdb", KURRENTDB_URI=ESDB, TRACKING_STORE="postgres"
    )
    assert pg.tracking_store == "postgres"


def test_the_eventstoredb_names_still_choose_kurrentdb(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from_env(
        monkeypatch,
        EVENT_STORE="eventstoredb",
        EVENTSTOREDB_URI=ESDB,
        EVENTSTOREDB_ROOT_CERTIFICATES="-----BEGIN CERTIFICATE-----",
    )
    assert settings.event_store == "kurrentdb"
    env = application_env(settings)
    assert resolve_topic(env["PERSISTENCE_MODULE"]) is KurrentDBFactory
    assert env["KURRENTDB_URI"] == ESDB
    assert env["KURRENTDB_ROOT_CERTIFICATES"] == "-----BEGIN CERTIFICATE-----"


def test_the_kurrentdb_name_wins_over_the_old_one(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from_env(
        monkeypatch,
        EVENT_STORE="kurrentdb",
        KURRENTDB_URI=ESDB,
        EVENTSTOREDB_URI="esdb://elsewhere:2113?Tls=false",
    )
    assert application_env(settings)["KURRENTDB_URI"] == ESDB


def test_positions_go_where_tracking_store_says(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = settings_from_env(
        monkeypatch, EVENT_STORE="kurrentdb", KURRENTDB_URI=ESDB, DATA_DIR=str(tmp_path)
    )
    recorder = tracking_recorder(settings, "some_consumer")
    assert isinstance(recorder, SQLiteTrackingRecorder)
    assert settings.sqlite_tracking_path("some_consumer").exists()


def test_an_unknown_event_store_is_refused_with_the_choices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ValidationError, match="'sqlite', 'postgres' or 'kurrentdb'"):
        settings_from_env(monkeypatch, EVENT_STORE="mysql")


def test_kurrentdb_without_a_uri_is_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ValidationError, match=r"needs KURRENTDB_URI \(or EVENTSTOREDB_URI\)"):
        settings_from_env(monkeypatch, EVENT_STORE="eventstoredb")
    with pytest.raises(ValidationError, match="KURRENTDB_URI must start with one of esdb://"):
        settings_from_env(monkeypatch, EVENT_STORE="kurrentdb", EVENTSTOREDB_URI="http://x")


def test_a_postgres_dsn_stands_in_for_the_separate_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_from_env(
        monkeypatch,
        EVENT_STORE="postgres",
        POSTGRES_USER="ignored",
        POSTGRES_DSN="postgresql://app:s%40cret@db.internal:6543/artifacts",
    )
    env = application_env(settings)
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"]) == ("db.internal", "6543")
    assert (env["POSTGRES_DBNAME"], env["POSTGRES_USER"]) == ("artifacts", "app")
    assert env["POSTGRES_PASSWORD"] == "s@cret"


def test_a_bad_postgres_dsn_is_refused_without_echoing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError) as refused:
        settings_from_env(monkeypatch, POSTGRES_DSN="postgresql://app:hunter2@h/db?sslmode=require")
    assert "sslmode not supported here" in str(refused.value)
    assert "hunter2" not in str(refused.value)
    with pytest.raises(ValidationError, match="POSTGRES_DSN is not a valid connection string"):
        settings_from_env(monkeypatch, POSTGRES_DSN="not a dsn")
