"""What a consumer is handed for each stored event, and whether a failure is worth waiting out.

``DecodingSubscription`` is eventsourcing's ``ApplicationSubscription`` with one difference:
decoding happens per notification and a failure to decode is *delivered*, tied to its
position, instead of being raised out of the iterator (which would end the subscription, and
the next one would fail on the same notification forever). A consumer then records that
event as a dead letter and moves on, in order.

``is_transient`` is the one rule for the rest: a failure of something the consumer depends on
(the store, Temporal, the network) says nothing about the event, so the consumer holds its
position and tries again; any other failure is the event's own, and retrying it in place
would block every event behind it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Self
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import (
    ConnectionPoolClosedError,
    InterfaceError,
    InternalError,
    Notification,
    OperationalError,
    Tracking,
    WaitInterruptedError,
)
from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

# Temporal answers these while it (or the network to it) is unwell, or while the deployment
# is misconfigured (a namespace not there yet, a key not yet valid): every event would fail
# alike, so they hold the position rather than turn the whole stream into dead letters.
# INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE, ... are about the request itself.
_TRANSIENT_RPC = frozenset(
    {
        RPCStatusCode.CANCELLED,
        RPCStatusCode.UNKNOWN,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.NOT_FOUND,
        RPCStatusCode.PERMISSION_DENIED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
        RPCStatusCode.ABORTED,
        RPCStatusCode.INTERNAL,
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.UNAUTHENTICATED,
    }
)
# The store's own failures as eventsourcing's recorders raise them (a connection lost, a
# lock not granted, a pool closed or exhausted), and the network's.
_TRANSIENT = (
    InterfaceError,
    OperationalError,
    InternalError,
    ConnectionPoolClosedError,
    WaitInterruptedError,
    RPCTimeoutOrCancelledError,
    OSError,  # ConnectionError, TimeoutError, socket errors
)


def is_transient(err: BaseException) -> bool:
    """True when ``err`` is the failure of a dependency, not of the event being handled."""
    if isinstance(err, RPCError):
        return err.status in _TRANSIENT_RPC
    return isinstance(err, _TRANSIENT)


def describe(err: BaseException) -> str:
    """The error as a dead letter records it: its type and message, bounded."""
    return f"{type(err).__name__}: {err}"[:2000]


@dataclass(frozen=True)
class Delivery:
    """One stored event of the followed topics: decoded, or the reason it could not be."""

    notification: Notification
    tracking: Tracking
    event: Any | None
    """The domain event; None when decoding failed."""
    error: BaseException | None = None

    @property
    def topic(self) -> str:
        return self.notification.topic

    @property
    def originator_id(self) -> UUID | str:
        return self.notification.originator_id

    @property
    def originator_version(self) -> int:
        return self.notification.originator_version


def decode(app: Application[Any], notification: Notification) -> Delivery:
    """``notification`` decoded with ``app``'s mapper; a failure is kept, not raised."""
    tracking = Tracking(app.name, notification.id)
    try:
        event = app.mapper.to_domain_event(notification)
    except Exception as err:  # a topic that no longer resolves, bytes that do not decode, ...
        return Delivery(notification, tracking, None, err)
    return Delivery(notification, tracking, event)


class DecodingSubscription(Iterator[Delivery]):
    """The application's stored events after ``gt`` of ``topics``, each as a ``Delivery``.

    Blocks for new ones like ``ApplicationSubscription``; a failure of the store itself
    still ends the iteration (the consumer resubscribes from its recorded position).
    """

    def __init__(self, app: Application[Any], gt: int | None, topics: Sequence[str]) -> None:
        self._app = app
        self.subscription = app.recorder.subscribe(gt=gt, topics=topics)

    def stop(self) -> None:
        self.subscription.stop()

    def __enter__(self) -> Self:
        self.subscription.__enter__()
        return self

    def __exit__(self, *args: object) -> None:
        self.subscription.__exit__(*args)

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> Delivery:
        return decode(self._app, next(self.subscription))


def notification_at(app: Application[Any], position: int) -> Notification | None:
    """The stored event at ``position`` of the application sequence, read again."""
    found = app.recorder.select_notifications(start=position, limit=1, inclusive_of_start=True)
    if found and found[0].id == position:
        return found[0]
    return None
