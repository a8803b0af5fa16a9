"""What the reconciler decides for an artifact, from its aggregate and its run's state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from application.artifacts import ArtifactsApplication
from domain.artifact import Artifact
from infrastructure.temporal.reconciliation import LEAVE, RunState, Verdict, verdict
from tests.fakes import in_memory_artifacts

NOW = datetime(2025, 1, 1, tzinfo=UTC)
GRACE = timedelta(seconds=30)


@pytest.fixture
def artifacts() -> ArtifactsApplication:
    return in_memory_artifacts()


def uploaded(artifacts: ArtifactsApplication) -> Artifact:
    created = artifacts.create_artifact_once(
        idempotency_key=None,
        filename="a.txt",
        content_type="text/plain",
        size=1,
        sha256="0" * 64,
        storage_location="ab/" + "0" * 32,
    )
    return artifacts.get_artifact(created.id)


def started(artifacts: ArtifactsApplication) -> Artifact:
    artifact = uploaded(artifacts)
    artifacts.record_processing_started(artifact.id, run=0, workflow_id=artifact.workflow_id)
    return artifacts.get_artifact(artifact.id)


def decide(artifact: Artifact, run: RunState, *, age: timedelta = timedelta(hours=1)) -> Verdict:
    return verdict(artifact, run, opened_at=NOW - age, now=NOW, grace=GRACE)


@pytest.mark.parametrize(
    ("run", "reason"),
    [
        (RunState.TERMINATED, "run_terminated"),
        (RunState.TIMED_OUT, "run_timed_out"),
        (RunState.FAILED, "run_failed"),
        (RunState.COMPLETED, "run_failed"),
    ],
)
def test_a_run_closed_without_an_outcome_is_recorded_as_a_failure_saying_how(
    artifacts: ArtifactsApplication, run: RunState, reason: str
) -> None:
    decided = decide(started(artifacts), run)

    assert (decided.action, decided.reason) == ("fail", reason)


def test_a_run_cancelled_in_temporal_is_recorded_as_cancelled(
    artifacts: ArtifactsApplication,
) -> None:
    decided = decide(started(artifacts), RunState.CANCELED)

    assert (decided.action, decided.reason) == ("cancel", "run_cancelled")


def test_a_running_run_is_left_alone(artifacts: ArtifactsApplication) -> None:
    assert decide(started(artifacts), RunState.RUNNING) == LEAVE
    assert decide(uploaded(artifacts), RunState.RUNNING) == LEAVE


def test_an_artifact_with_an_outcome_is_left_alone_whatever_its_run_says(
    artifacts: ArtifactsApplication,
) -> None:
    artifact = started(artifacts)
    artifacts.record_processing_failure(artifact.id, run=0, reason="corrupt", message="")

    assert decide(artifacts.get_artifact(artifact.id), RunState.FAILED) == LEAVE


def test_a_started_run_temporal_no_longer_knows_is_lost(artifacts: ArtifactsApplication) -> None:
    decided = decide(started(artifacts), RunState.NOT_FOUND)

    assert (decided.action, decided.reason) == ("fail", "run_lost")


def test_a_run_never_started_is_redriven_only_after_the_grace(
    artifacts: ArtifactsApplication,
) -> None:
    artifact = uploaded(artifacts)

    assert decide(artifact, RunState.NOT_FOUND, age=timedelta(seconds=5)) == LEAVE
    assert decide(artifact, RunState.NOT_FOUND, age=GRACE).action == "redrive"


def test_a_cancelled_artifact_whose_run_never_started_is_recorded_as_cancelled(
    artifacts: ArtifactsApplication,
) -> None:
    artifact = uploaded(artifacts)
    artifacts.request_cancellation(artifact.id)

    decided = decide(artifacts.get_artifact(artifact.id), RunState.NOT_FOUND)

    assert (decided.action, decided.reason) == ("cancel", "cancelled")
