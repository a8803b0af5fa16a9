"""How a process connects to Temporal, from its environment: plain, TLS, mTLS, API key.

The options are those handed to ``Client.connect``; no TLS server runs here, so these
tests stop at the options (the plain set-up is connected to by every integration test).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.service import TLSConfig

from infrastructure.config import Settings, environment_names
from infrastructure.temporal.connection import connect_options


def settings_from_env(monkeypatch: pytest.MonkeyPatch, home: Path, **env: str) -> Settings:
    """Settings as a process started with exactly these variables would read them."""
    for name in environment_names():
        monkeypatch.delenv(name, raising=False)
    for name in ("TEMPORAL_CONFIG_FILE", "TEMPORAL_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    # No .env file, and no Temporal CLI profile of the machine running the tests.
    monkeypatch.chdir(home)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def pem(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_text(f"-----BEGIN {name}-----\n")
    return path


def test_the_plain_development_setup_connects_without_tls(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    options = connect_options(settings_from_env(monkeypatch, tmp_path))
    assert options == {"target_host": "localhost:7233", "namespace": "default"}


def test_address_and_namespace_are_the_same_variables_as_before(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = settings_from_env(
        monkeypatch, tmp_path, TEMPORAL_ADDRESS="temporal:7233", TEMPORAL_NAMESPACE="artifacts"
    )
    assert (settings.temporal_address, settings.temporal_namespace) == (
        "temporal:7233",
        "artifacts",
    )
    options = connect_options(settings)
    assert (options["target_host"], options["namespace"]) == ("temporal:7233", "artifacts")
    assert "tls" not in options


def test_an_api_key_turns_tls_on_as_temporal_cloud_needs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    options = connect_options(
        settings_from_env(
            monkeypatch,
            tmp_path,
            TEMPORAL_ADDRESS="eu-west-1.aws.api.temporal.io:7233",
            TEMPORAL_NAMESPACE="artifacts.a1b2c",
            TEMPORAL_API_KEY="key-123",
        )
    )
    assert options["api_key"] == "key-123"
    assert options["tls"] is True
    assert options["namespace"] == "artifacts.a1b2c"


def test_the_api_key_can_come_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key = tmp_path / "temporal_api_key"
    key.write_text("key-from-file\n")
    settings = settings_from_env(monkeypatch, tmp_path, TEMPORAL_API_KEY_FILE=str(key))
    assert connect_options(settings)["api_key"] == "key-from-file"


def test_mtls_carries_the_client_certificate_key_and_server_ca(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    options = connect_options(
        settings_from_env(
            monkeypatch,
            tmp_path,
            TEMPORAL_ADDRESS="temporal.internal:7233",
            TEMPORAL_TLS_CLIENT_CERT_PATH=str(pem(tmp_path, "CERT")),
            TEMPORAL_TLS_CLIENT_KEY_PATH=str(pem(tmp_path, "KEY")),
            TEMPORAL_TLS_SERVER_CA_CERT_PATH=str(pem(tmp_path, "CA")),
            TEMPORAL_TLS_SERVER_NAME="temporal",
        )
    )
    tls = options["tls"]
    assert isinstance(tls, TLSConfig)
    assert tls.client_cert == b"-----BEGIN CERT-----\n"
    assert tls.client_private_key == b"-----BEGIN KEY-----\n"
    assert tls.server_root_ca_cert == b"-----BEGIN CA-----\n"
    assert tls.domain == "temporal"
    assert "api_key" not in options


def test_tls_can_be_forced_off_or_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    off = settings_from_env(monkeypatch, tmp_path, TEMPORAL_API_KEY="k", TEMPORAL_TLS="false")
    assert connect_options(off)["tls"] is False
    on = settings_from_env(monkeypatch, tmp_path, TEMPORAL_TLS="true")
    assert isinstance(connect_options(on)["tls"], TLSConfig)


def test_a_profile_file_fills_what_the_environment_leaves_unset(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "temporal.toml"
    config.write_text(
        '[profile.prod]\naddress = "prod.internal:7233"\nnamespace = "prod"\napi_key = "pk"\n'
    )
    settings = settings_from_env(
        monkeypatch, tmp_path, TEMPORAL_CONFIG_FILE=str(config), TEMPORAL_PROFILE="prod"
    )
    assert (settings.temporal_address, settings.temporal_namespace) == (
        "prod.internal:7233",
        "prod",
    )
    assert connect_options(settings)["api_key"] == "pk"
    # The environment wins over the file, as the SDK has it.
    overridden = settings_from_env(
        monkeypatch,
        tmp_path,
        TEMPORAL_CONFIG_FILE=str(config),
        TEMPORAL_PROFILE="prod",
        TEMPORAL_NAMESPACE="staging",
    )
    assert overridden.temporal_namespace == "staging"
    assert overridden.temporal_address == "prod.internal:7233"


def test_values_given_in_code_win_over_the_process_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings_from_env(monkeypatch, tmp_path, TEMPORAL_ADDRESS="elsewhere:7233")
    settings = Settings(temporal_address="127.0.0.1:17233")
    assert connect_options(settings)["target_host"] == "127.0.0.1:17233"


def test_a_missing_profile_or_config_file_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError, match=r"TEMPORAL_CONFIG_FILE: .* is not a file"):
        settings_from_env(monkeypatch, tmp_path, TEMPORAL_CONFIG_FILE=str(tmp_path / "absent"))
    config = tmp_path / "temporal.toml"
    config.write_text('[profile.default]\naddress = "x:7233"\n')
    with pytest.raises(ValidationError, match="Profile 'prod' not found"):
        settings_from_env(
            monkeypatch, tmp_path, TEMPORAL_CONFIG_FILE=str(config), TEMPORAL_PROFILE="prod"
        )


def test_a_missing_certificate_stops_the_connection_naming_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = settings_from_env(
        monkeypatch,
        tmp_path,
        TEMPORAL_TLS_CLIENT_CERT_PATH=str(tmp_path / "missing.pem"),
        TEMPORAL_TLS_CLIENT_KEY_PATH=str(pem(tmp_path, "KEY")),
    )
    with pytest.raises(FileNotFoundError, match=r"missing\.pem"):
        connect_options(settings)
