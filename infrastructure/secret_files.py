"""Secret settings read from files, as containers hand them over.

Two conventions, both for files that an orchestrator mounts (Docker and Compose secrets,
Kubernetes secret volumes) so that a secret is never an environment variable:

- ``SECRETS_DIR`` (such as ``/run/secrets``): pydantic-settings' secrets directory, one file
  per setting, named like it (``postgres_password``);
- ``X_FILE`` beside every secret setting ``X`` (``POSTGRES_PASSWORD_FILE=/run/secrets/pg``):
  the setting's value is that file's content, as the official PostgreSQL image reads it.

Either way the content is stripped of surrounding whitespace (the newline an editor or
``echo`` leaves), as pydantic-settings does for its secrets directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, get_args

from pydantic import AliasChoices, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
)
from pydantic_settings.exceptions import SettingsError

SECRETS_DIR = "SECRETS_DIR"
FILE_SUFFIX = "_FILE"


def names_of(name: str, field: FieldInfo) -> list[str]:
    """The environment variable names a field is read from: its own and its aliases'."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice).upper() for choice in alias.choices if isinstance(choice, str)]
    if isinstance(alias, str):
        return [alias.upper()]
    return [name.upper()]


def secret_fields(settings_cls: type[BaseSettings]) -> Iterator[tuple[str, FieldInfo]]:
    """The fields that hold a secret (``SecretStr``, optional or not)."""
    for name, field in settings_cls.model_fields.items():
        if field.annotation is SecretStr or SecretStr in get_args(field.annotation):
            yield name, field


class SecretFilesSource(PydanticBaseSettingsSource):
    """``X_FILE`` for every secret setting ``X``; ``X`` and ``X_FILE`` together are refused.

    ``given`` holds what the other sources were handed (constructor arguments, the
    environment, the ``.env`` file), keys lower case, so that the refusal covers them all.
    """

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        *,
        variables: Mapping[str, str | None],
        given: Mapping[str, object],
    ) -> None:
        super().__init__(settings_cls)
        self._variables = variables
        self._given = given

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        # Unused: __call__ reads every field at once, since one value may come from any alias.
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in secret_fields(self.settings_cls):
            names = names_of(name, field)
            files = [
                (variable, path)
                for variable in (n + FILE_SUFFIX for n in names)
                if (path := self._variables.get(variable.lower()))
            ]
            if not files:
                continue
            direct = [n for n in names if self._given.get(n.lower()) not in (None, "")]
            if direct or len(files) > 1:
                both = ", ".join([*direct, *(variable for variable, _ in files)])
                raise SettingsError(f"{both}: set one of them, not both")
            variable, path = files[0]
            try:
                content = Path(path).read_text(encoding="utf-8")
            except OSError as err:  # names the file, never its content
                raise SettingsError(f"{variable}: cannot read {path}: {err.strerror}") from None
            values[names[0].lower()] = content.strip()
        return values


def sources(
    settings_cls: type[BaseSettings],
    init_settings: PydanticBaseSettingsSource,
    env_settings: PydanticBaseSettingsSource,
    dotenv_settings: PydanticBaseSettingsSource,
    file_secret_settings: PydanticBaseSettingsSource,
) -> tuple[PydanticBaseSettingsSource, ...]:
    """pydantic-settings' sources in their order, with ``X_FILE`` after the environment and
    ``.env``, and the ``SECRETS_DIR`` directory (if set) last."""
    dotenv = dotenv_settings if isinstance(dotenv_settings, DotEnvSettingsSource) else None
    variables = {**(dotenv.env_vars if dotenv else {}), **process_environment()}
    given: dict[str, object] = dict(variables)
    if isinstance(init_settings, InitSettingsSource):
        given.update({k.lower(): v for k, v in init_settings.init_kwargs.items()})
    directory = secrets_directory(os.environ)
    return (
        init_settings,
        env_settings,
        dotenv_settings,
        SecretFilesSource(settings_cls, variables=variables, given=given),
        SecretsSettingsSource(settings_cls, secrets_dir=directory)
        if directory is not None
        else file_secret_settings,
    )


def secrets_directory(environ: Mapping[str, str]) -> Path | None:
    """The directory ``SECRETS_DIR`` names; one that is not there is refused at start
    (pydantic-settings would only warn, and every secret would quietly be missing)."""
    value = environ.get(SECRETS_DIR)
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise SettingsError(f"{SECRETS_DIR}: {value} is not a directory")
    return path


def environment_names(settings_cls: type[BaseSettings]) -> frozenset[str]:
    """Every environment variable the settings read, ``X_FILE`` ones and ``SECRETS_DIR``
    included (for checks of deployment files)."""
    names = {SECRETS_DIR}
    for name, field in settings_cls.model_fields.items():
        names.update(names_of(name, field))
    for name, field in secret_fields(settings_cls):
        names.update(n + FILE_SUFFIX for n in names_of(name, field))
    return frozenset(names)


def process_environment() -> dict[str, str]:
    """The process's environment, names lower case (settings names are case-insensitive)."""
    return {k.lower(): v for k, v in os.environ.items()}
