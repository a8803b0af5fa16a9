"""Which failures of an activity retrying cannot fix, in one place.

A permanent failure is a non-retryable ``ApplicationError`` whose type is the reason the
artifact's failure records, so the workflow ends the run after one attempt and records why.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from temporalio.exceptions import ApplicationError

from application.artifacts import ArtifactNotFound
from application.processing import FailureReason, UnprocessableContent
from domain.errors import OutcomeAlreadyRecorded, StaleRun
from infrastructure.processing.limits import ParserKilled


def permanent(reason: str, message: str) -> ApplicationError:
    """A failure that retrying cannot fix; ``reason`` is recorded on the artifact."""
    return ApplicationError(message, type=reason, non_retryable=True)


@contextmanager
def processing_failures_are_permanent() -> Iterator[None]:
    """``UnprocessableContent`` ends the run with its reason. A parser killed from outside
    is retried instead, under a type the workflow records when the retries run out."""
    try:
        yield
    except UnprocessableContent as err:
        raise permanent(err.reason.value, err.message) from err
    except ParserKilled as err:
        raise ApplicationError(str(err), type=FailureReason.PARSER_KILLED.value) from err


@contextmanager
def domain_errors_are_permanent() -> Iterator[None]:
    try:
        yield
    except ArtifactNotFound as err:
        raise permanent("artifact_not_found", str(err)) from err
    except OutcomeAlreadyRecorded as err:
        raise permanent("outcome_conflict", str(err)) from err
    except StaleRun as err:
        raise permanent("stale_run", str(err)) from err
