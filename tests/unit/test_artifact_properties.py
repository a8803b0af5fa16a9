"""The Artifact aggregate under any sequence of commands (hypothesis state machine).

A small model says what each command should do: its event, a no-op for a repeat, or a
domain error. After every step the aggregate saved and read back through eventsourcing's
own mechanics (an in-memory ``Application``) equals the live object, and the stream's
versions are gapless.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from domain.artifact import (
    Artifact,
    ArtifactStatus,
)
from domain.errors import ArtifactError, OutcomeAlreadyRecorded, ReprocessingNotAllowed, StaleRun

# Two different successful outcomes, so a repeat of the same one and a contradicting one
# can both be drawn.
PROCESSED_FACTS: list[dict[str, Any]] = [
    {
        "mime_type": "application/pdf",
        "kind": "pdf",
        "page_count": 2,
        "char_count": 120,
        "text_locations": ["aa/aa01"],
        "details": {"encrypted": False},
    },
    {
        "mime_type": "text/plain",
        "kind": "text",
        "page_count": None,
        "char_count": 7,
        "text_locations": [],
        "details": {"encoding": "utf-8"},
    },
]
FAILURE_REASONS = ["timeout", "unsupported_type"]
# The run a write-back names, relative to the current one: late (-1), current, from the future.
RUN_OFFSETS = st.sampled_from([-1, 0, 0, 0, 1])


@dataclass
class Model:
    """What the aggregate should look like: the rules of artifact.py, restated plainly."""

    run: int = 0
    status: ArtifactStatus = ArtifactStatus.UPLOADED
    processed: int | None = None  # index into PROCESSED_FACTS
    failure_reason: str | None = None
    summary: bool = False

    @property
    def has_outcome(self) -> bool:
        return self.status in (ArtifactStatus.PROCESSED, ArtifactStatus.FAILED)


def state_of(artifact: Artifact) -> dict[str, Any]:
    """Everything the aggregate holds, pending events aside."""
    return {k: v for k, v in vars(artifact).items() if k != "_pending_events"}


class ArtifactMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.app: Application[UUID] = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        self.model = Model()

    @initialize(filename=st.text(max_size=40), size=st.integers(min_value=0, max_value=10**9))
    def upload(self, filename: str, size: int) -> None:
        self.artifact = Artifact.create(
            filename=filename,
            content_type="application/octet-stream",
            size=size,
            sha256=hashlib.sha256(filename.encode()).hexdigest(),
            storage_location="ab/ab01",
        )
        self.app.save(self.artifact)

    def issue(self, command: Callable[[], object], error: type[ArtifactError] | None) -> None:
        """Runs one command: it raises ``error`` and changes nothing, or it succeeds."""
        before = copy.deepcopy(state_of(self.artifact))
        if error is None:
            command()
        else:
            try:
                command()
            except error:
                assert state_of(self.artifact) == before, "a refused command changed the state"
                assert not self.artifact.collect_events(), "a refused command recorded events"
                return
            raise AssertionError(f"expected {error.__name__}")
        self.app.save(self.artifact)

    def stale(self, offset: int) -> type[StaleRun] | None:
        return StaleRun if offset != 0 else None

    @rule(offset=RUN_OFFSETS)
    def start_processing(self, offset: int) -> None:
        run = self.model.run + offset
        self.issue(
            lambda: self.artifact.record_started(run=run, workflow_id=f"wf-{run}"),
            self.stale(offset),
        )
        if offset == 0 and self.model.status is ArtifactStatus.UPLOADED:
            self.model.status = ArtifactStatus.PROCESSING

    @rule(offset=RUN_OFFSETS, which=st.sampled_from(range(len(PROCESSED_FACTS))))
    def record_processed(self, offset: int, which: int) -> None:
        run, model = self.model.run + offset, self.model
        repeat = model.status is ArtifactStatus.PROCESSED and model.processed == which
        error = self.stale(offset) or (
            OutcomeAlreadyRecorded if model.has_outcome and not repeat else None
        )
        self.issue(lambda: self.artifact.record_processed(run=run, **PROCESSED_FACTS[which]), error)
        if error is None:
            model.status, model.processed = ArtifactStatus.PROCESSED, which

    @rule(offset=RUN_OFFSETS, text=st.text(max_size=20))
    def add_summary_candidate(self, offset: int, text: str) -> None:
        run = self.model.run + offset
        self.issue(
            lambda: self.artifact.add_summary_candidate(
                run=run, text=text, source="lexrank", model="lexrank", pipeline_version="v1"
            ),
            self.stale(offset),
        )
        if offset == 0:
            self.model.summary = True

    @rule(offset=RUN_OFFSETS, reason=st.sampled_from(FAILURE_REASONS))
    def record_failure(self, offset: int, reason: str) -> None:
        run, model = self.model.run + offset, self.model
        repeat = model.status is ArtifactStatus.FAILED and model.failure_reason == reason
        error = self.stale(offset) or (
            OutcomeAlreadyRecorded if model.has_outcome and not repeat else None
        )
        self.issue(
            lambda: self.artifact.record_failed(run=run, reason=reason, message="it broke"), error
        )
        if error is None:
            model.status, model.failure_reason = ArtifactStatus.FAILED, reason

    @rule()
    def request_reprocessing(self) -> None:
        allowed = self.model.has_outcome
        self.issue(self.artifact.request_reprocessing, None if allowed else ReprocessingNotAllowed)
        if allowed:
            self.model = Model(run=self.model.run + 1)

    @invariant()
    def matches_the_model(self) -> None:
        artifact, model = self.artifact, self.model
        assert artifact.run == model.run
        assert artifact.status is model.status
        assert (artifact.summary is not None) == model.summary
        assert artifact.failure_reason == model.failure_reason
        if model.processed is None:
            assert artifact.mime_type is None
        else:
            assert artifact.mime_type == PROCESSED_FACTS[model.processed]["mime_type"]

    @invariant()
    def replaying_the_stored_events_gives_the_live_state(self) -> None:
        stored: Artifact = self.app.repository.get(self.artifact.id)
        assert isinstance(stored, Artifact)
        assert state_of(stored) == state_of(self.artifact)

    @invariant()
    def versions_are_gapless_from_zero(self) -> None:
        versions = [e.originator_version for e in self.app.events.get(self.artifact.id)]
        assert versions == list(range(len(versions)))
        assert self.artifact.version == versions[-1]


ArtifactMachine.TestCase.settings = settings(
    ArtifactMachine.TestCase.settings, max_examples=50, stateful_step_count=25
)
TestArtifactUnderAnyCommands = ArtifactMachine.TestCase
