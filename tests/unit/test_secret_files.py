"""Secret settings from mounted files: X_FILE beside a secret setting, or SECRETS_DIR."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr
from pydantic_settings import SettingsError

from infrastructure.config import Settings, environment_names


def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str) -> None:
    """A process environment with exactly these variables (and no .env file)."""
    for name in environment_names():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def secret(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content)
    return path


def test_a_secret_setting_is_read_from_the_file_its_file_variable_names(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env(
        monkeypatch,
        tmp_path,
        POSTGRES_PASSWORD_FILE=str(secret(tmp_path, "pg", "s3cret\n")),
        API_KEYS_FILE=str(secret(tmp_path, "keys", "k1,k2")),
        ADMIN_API_KEYS_FILE=str(secret(tmp_path, "admin", "a1")),
    )
    settings = Settings()
    assert settings.postgres_password.get_secret_value() == "s3cret"
    assert settings.api_key_list == ["k1", "k2"]
    assert settings.admin_api_key_list == ["a1"]


def test_the_older_name_of_a_secret_setting_has_its_file_variable_too(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    uri = "esdb://user:pw@kurrentdb:2113"
    clean_env(
        monkeypatch,
        tmp_path,
        EVENT_STORE="eventstoredb",
        EVENTSTOREDB_URI_FILE=str(secret(tmp_path, "uri", uri)),
    )
    settings = Settings()
    assert settings.kurrentdb_uri is not None
    assert settings.kurrentdb_uri.get_secret_value() == uri


def test_a_setting_and_its_file_variable_together_are_refused_naming_both(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env(
        monkeypatch,
        tmp_path,
        OPENAI_API_KEY="from-env",
        OPENAI_API_KEY_FILE=str(secret(tmp_path, "openai", "from-file")),
    )
    with pytest.raises(SettingsError) as refused:
        Settings()
    message = str(refused.value)
    assert "OPENAI_API_KEY, OPENAI_API_KEY_FILE: set one of them, not both" in message
    assert "from-env" not in message
    assert "from-file" not in message


def test_a_value_given_in_code_and_a_file_variable_are_refused_too(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env(monkeypatch, tmp_path, API_KEYS_FILE=str(secret(tmp_path, "keys", "k")))
    with pytest.raises(SettingsError, match="API_KEYS, API_KEYS_FILE"):
        Settings(api_keys=SecretStr("k"))


def test_an_unreadable_file_is_named_without_anything_of_its_content(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env(monkeypatch, tmp_path, POSTGRES_DSN_FILE=str(tmp_path / "absent"))
    with pytest.raises(SettingsError, match=r"POSTGRES_DSN_FILE: cannot read .*absent"):
        Settings()


def test_every_secret_setting_has_a_file_variable_even_one_added_later(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    class WithObjectStorage(Settings):
        aws_secret_access_key: SecretStr | None = None

    clean_env(
        monkeypatch,
        tmp_path,
        AWS_SECRET_ACCESS_KEY_FILE=str(secret(tmp_path, "aws", "wJalr\n")),
    )
    loaded = WithObjectStorage().aws_secret_access_key
    assert loaded is not None
    assert loaded.get_secret_value() == "wJalr"


def test_only_secret_settings_have_file_variables() -> None:
    names = environment_names()
    assert {"POSTGRES_PASSWORD_FILE", "KURRENTDB_URI_FILE", "EVENTSTOREDB_URI_FILE"} <= names
    assert {"TEMPORAL_API_KEY_FILE", "SECRETS_DIR", "EVENTSTOREDB_URI"} <= names
    assert "TEMPORAL_ADDRESS_FILE" not in names
    assert "POSTGRES_HOST_FILE" not in names


def test_a_secrets_directory_holds_one_file_per_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    directory = tmp_path / "secrets"
    directory.mkdir()
    secret(directory, "postgres_password", "from-dir\n")
    secret(directory, "api_keys", "dir-key")
    clean_env(monkeypatch, tmp_path, SECRETS_DIR=str(directory), API_KEYS="env-key")
    settings = Settings()
    assert settings.postgres_password.get_secret_value() == "from-dir"
    # What is set explicitly wins over a mounted file.
    assert settings.api_key_list == ["env-key"]


def test_a_secrets_directory_that_is_not_there_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env(monkeypatch, tmp_path, SECRETS_DIR=str(tmp_path / "absent"))
    with pytest.raises(SettingsError, match=r"SECRETS_DIR: .*absent is not a directory"):
        Settings()
