"""The process catalogue: each of the service's processes by its one name, the module it runs,
and the Temporal dev server `make dev` starts beside them.

The Procfile is its ``procfile()``
(``python -c 'from tests.support import procfile; print(procfile(), end="")' > Procfile``), and
tests/integration/test_deployment_files.py fails when the Procfile, the compose services or
the Makefile's run targets say otherwise. Launchers take their modules from here.
"""

from __future__ import annotations

from infrastructure.temporal.models import SEARCH_ATTRIBUTES

# Name -> module. The name is the one the Procfile, the logs and `infrastructure.healthcheck`
# use; compose spells it with a hyphen (``compose_service``).
PROCESSES: dict[str, str] = {
    "api": "infrastructure.api",
    "pipeline_worker": "infrastructure.pipeline_worker",
    "read_worker": "infrastructure.read_worker",
    "temporal_worker": "infrastructure.temporal.worker",
}

TEMPORAL_DEV_SERVER = "temporal"


def compose_service(name: str) -> str:
    """The docker-compose.yml service that runs process ``name``."""
    return name.replace("_", "-")


def search_attribute_args() -> list[str]:
    """The flags that register the workflow's search attributes on a dev server."""
    return [
        arg for key in SEARCH_ATTRIBUTES for arg in ("--search-attribute", f"{key.name}=Keyword")
    ]


# The dev server dispatches tasks of different fairness keys (each run carries its tenant's)
# in turn only with fairness on: without it, one tenant's backlog is served first in full.
FAIRNESS_ARGS = ["--dynamic-config-value", "matching.enableFairness=true"]


def temporal_dev_server_args(*, port: str, ui_port: str, db_filename: str) -> list[str]:
    """``temporal server start-dev`` as `make temporal-dev` and the Procfile run it."""
    return [
        "temporal",
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        port,
        "--ui-port",
        ui_port,
        "--db-filename",
        db_filename,
        "--log-level",
        "warn",
        *search_attribute_args(),
        *FAIRNESS_ARGS,
    ]


def procfile() -> str:
    """The Procfile `make dev` runs with honcho: the dev server, then every process."""
    temporal = temporal_dev_server_args(
        port="${TEMPORAL_PORT:-7233}",
        ui_port="${TEMPORAL_UI_PORT:-8233}",
        db_filename="${DATA_DIR:-data}/temporal.db",
    )
    lines = [f"{TEMPORAL_DEV_SERVER}: exec {' '.join(temporal)}"]
    lines += [f"{name}: exec python -m {module}" for name, module in PROCESSES.items()]
    return "\n".join(lines) + "\n"
