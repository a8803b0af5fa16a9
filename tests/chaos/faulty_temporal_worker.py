"""The Temporal worker with one fault: its write-back fails once per artifact *after* writing.

Run as ``python -m tests.chaos.faulty_temporal_worker``, in place of
``infrastructure.temporal.worker``. Temporal then retries an activity whose effect has
already landed, which is what a crash between the write and the activity's completion
looks like.
"""

from __future__ import annotations

import sys
import threading
from uuid import UUID

from temporalio import activity

from infrastructure.di.container import temporal_worker
from infrastructure.signals import run_process
from infrastructure.temporal.activities import ArtifactActivities
from infrastructure.temporal.models import RECORD_PROCESSING_RESULT, ProcessingResult

FAULT = "chaos_fault_injected"


class FailingAfterWriting(ArtifactActivities):
    _failed: set[UUID] = set()
    _lock = threading.Lock()

    @activity.defn(name=RECORD_PROCESSING_RESULT)
    def record_processing_result(self, result: ProcessingResult) -> None:
        super().record_processing_result(result)
        with self._lock:
            first = result.artifact_id not in self._failed
            self._failed.add(result.artifact_id)
        if first:
            print(f"{FAULT} {result.artifact_id}", file=sys.stderr, flush=True)
            raise RuntimeError(f"{FAULT}: written, then failed")


if __name__ == "__main__":
    # Only the activities are faulty; the rest of the worker (settings, client, shutdown)
    # is the real one.
    run_process(lambda settings: temporal_worker(settings, activities_class=FailingAfterWriting))
