"""The fault-and-abuse suite runs on the same real servers as the integration tests."""

from tests.conftest import postgres_schema, settings, temporal_dev_env

__all__ = ["postgres_schema", "settings", "temporal_dev_env"]
