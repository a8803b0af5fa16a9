"""The one harness of tests, bench and the fault suite: the process catalogue, the stores
they run on and the launchers of the real processes. Import its names from here."""

from tests.support.extraction import ExtractionRun, WorkerLost
from tests.support.history import ActivityAttempt, last_attempt, pid_of, running_on
from tests.support.hosts import LOOPBACK, NAMESPACES, Host, Network, separate_hosts
from tests.support.launch import (
    REPO_ROOT,
    Condition,
    Process,
    free_port,
    port_is_open,
    running,
    service_env,
    settled,
    wait_until,
)
from tests.support.parsers import fork_servers, no_parser_outlives, parser_children
from tests.support.processes import (
    PROCESSES,
    TEMPORAL_DEV_SERVER,
    compose_service,
    procfile,
    search_attribute_args,
    temporal_dev_server_args,
)
from tests.support.proxy import TcpProxy
from tests.support.seaweedfs import SeaweedFS, seaweedfs
from tests.support.stores import (
    POSTGRES,
    PostgresServer,
    fresh_settings,
    make_settings,
    postgres_reachable,
    postgres_schema,
    store_settings,
)
from tests.support.temporal import (
    binary,
    register_search_attributes,
    start_dev_server,
    start_time_skipping,
)

__all__ = [
    "LOOPBACK",
    "NAMESPACES",
    "POSTGRES",
    "PROCESSES",
    "REPO_ROOT",
    "TEMPORAL_DEV_SERVER",
    "ActivityAttempt",
    "Condition",
    "ExtractionRun",
    "Host",
    "Network",
    "PostgresServer",
    "Process",
    "SeaweedFS",
    "TcpProxy",
    "WorkerLost",
    "binary",
    "compose_service",
    "fork_servers",
    "free_port",
    "fresh_settings",
    "last_attempt",
    "make_settings",
    "no_parser_outlives",
    "parser_children",
    "pid_of",
    "port_is_open",
    "postgres_reachable",
    "postgres_schema",
    "procfile",
    "register_search_attributes",
    "running",
    "running_on",
    "search_attribute_args",
    "seaweedfs",
    "separate_hosts",
    "service_env",
    "settled",
    "start_dev_server",
    "start_time_skipping",
    "store_settings",
    "temporal_dev_server_args",
    "wait_until",
]
