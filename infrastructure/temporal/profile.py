"""The Temporal client profile: the SDK's environment configuration, fed by our settings.

``temporalio.envconfig`` reads a TOML profile and the TEMPORAL_* variables over it. The
settings of the same names (from the environment, ``.env`` or ``*_FILE``) are handed to it
as that environment, so one resolution decides how every process connects.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from pydantic import SecretStr
from temporalio.envconfig import ClientConfigProfile

if TYPE_CHECKING:
    from infrastructure.config import Settings

# The settings that are the SDK's environment configuration variables, by the same names.
ENVCONFIG_SETTINGS = (
    "temporal_address",
    "temporal_namespace",
    "temporal_api_key",
    "temporal_tls",
    "temporal_tls_client_cert_path",
    "temporal_tls_client_key_path",
    "temporal_tls_server_ca_cert_path",
    "temporal_tls_server_name",
)


def load_profile(settings: Settings) -> ClientConfigProfile:
    """The profile the settings give; ValueError naming what is wrong (a missing profile)."""
    config_file = settings.temporal_config_file
    if config_file is not None and not config_file.is_file():
        # The SDK would quietly ignore it and connect to localhost.
        raise ValueError(f"TEMPORAL_CONFIG_FILE: {config_file} is not a file")
    try:
        return ClientConfigProfile.load(
            settings.temporal_profile,
            config_source=config_file,
            override_env_vars=_environment(settings),
        )
    except RuntimeError as err:  # the SDK's ConfigError: a missing profile, bad TOML
        raise ValueError(f"Temporal client configuration: {err}") from None


def _environment(settings: Settings) -> dict[str, str]:
    """The process environment with the SDK's variables as the settings hold them: a value
    given in code wins over the process's, and one the settings do not hold is dropped."""
    ours = {name.upper() for name in type(settings).model_fields if name.startswith("temporal_")}
    env = {k: v for k, v in os.environ.items() if k.upper() not in ours}
    env.pop("TEMPORAL_CONFIG_FILE", None)  # passed on their own, checked above
    env.pop("TEMPORAL_PROFILE", None)
    for name in settings.model_fields_set & set(ENVCONFIG_SETTINGS):
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, bool):
            value = str(value).lower()
        if value is not None:
            env[name.upper()] = str(value)
    return env
