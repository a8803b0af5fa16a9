"""The Artifact's domain errors: what a command refuses, in the domain's words."""

from __future__ import annotations


class ArtifactError(Exception):
    """Base class of the Artifact's domain errors."""


class InvalidArtifact(ArtifactError):  # noqa: N818 - a domain word, not an "Error" suffix
    """The facts given for a new artifact are not acceptable."""


class OutcomeAlreadyRecorded(ArtifactError):  # noqa: N818
    """A different processing outcome was already recorded for this artifact."""


class StaleRun(ArtifactError):  # noqa: N818
    """A write-back names a processing run that a reprocessing request has superseded."""


class ReprocessingNotAllowed(ArtifactError):  # noqa: N818
    """Reprocessing was asked for while a run is still in progress."""


class CancellationNotAllowed(ArtifactError):  # noqa: N818
    """Cancelling was asked for while no run is in flight (it already has an outcome)."""


class AlreadyErased(ArtifactError):  # noqa: N818
    """The artifact was erased: its bytes, results and personal data are gone for good."""
