"""Which failures hold a consumer's position (transient) and which make a dead letter."""

from __future__ import annotations

import json
import sqlite3

import pytest
from eventsourcing.persistence import (
    DataError,
    IntegrityError,
    InterfaceError,
    OperationalError,
)
from eventsourcing.utils import TopicError
from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from infrastructure.eventstore.delivery import describe, is_transient


@pytest.mark.parametrize(
    "status",
    [
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
        RPCStatusCode.CANCELLED,
        RPCStatusCode.INTERNAL,
        RPCStatusCode.UNAUTHENTICATED,
    ],
)
def test_temporal_being_away_or_busy_is_transient(status: RPCStatusCode) -> None:
    assert is_transient(RPCError("away", status, b""))


@pytest.mark.parametrize(
    "status",
    [
        RPCStatusCode.INVALID_ARGUMENT,
        RPCStatusCode.FAILED_PRECONDITION,
        RPCStatusCode.OUT_OF_RANGE,
        RPCStatusCode.UNIMPLEMENTED,
    ],
)
def test_temporal_refusing_the_request_itself_is_permanent(status: RPCStatusCode) -> None:
    assert not is_transient(RPCError("refused", status, b""))


@pytest.mark.parametrize(
    "err",
    [
        OperationalError("database is locked"),
        InterfaceError("connection closed"),
        ConnectionRefusedError(),
        TimeoutError(),
        RPCTimeoutOrCancelledError("timed out"),
    ],
)
def test_the_store_or_the_network_failing_is_transient(err: Exception) -> None:
    assert is_transient(err)


@pytest.mark.parametrize(
    "err",
    [
        TopicError("module not found"),
        json.JSONDecodeError("bad", "{", 0),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
        AttributeError("'ArtifactCreated' object has no attribute 'size'"),
        ValueError("not a request"),
        DataError("value out of range"),
        IntegrityError("not a duplicate"),
        sqlite3.DataError("bad"),
    ],
)
def test_an_event_that_cannot_be_decoded_or_handled_is_permanent(err: Exception) -> None:
    assert not is_transient(err)


def test_a_dead_letters_error_names_the_type_and_is_bounded() -> None:
    assert describe(ValueError("x")) == "ValueError: x"
    assert len(describe(ValueError("x" * 10_000))) == 2000
