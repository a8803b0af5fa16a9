"""The Temporal worker with the record steps' retries cut short, for scenario 14.

Run as ``python -m tests.chaos.short_write_back_worker``, in place of
``infrastructure.temporal.worker``. The workflow's own bound on its write-backs (12 attempts,
minutes apart) would make an outage longer than it last many minutes; a worker interceptor
gives the same activities two attempts of 5 s instead, so that a short outage outlasts them.
Everything else (workflow code, activities, settings) is the real worker's.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy
from temporalio.worker import (
    ActivityInboundInterceptor,
    Interceptor,
    StartActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)
from temporalio.workflow import ActivityHandle

from infrastructure.di.container import temporal_worker
from infrastructure.signals import run_process
from infrastructure.temporal.models import (
    RECORD_PROCESSING_FAILURE,
    RECORD_PROCESSING_RESULT,
    RECORD_PROCESSING_STARTED,
)

RECORD_STEPS = frozenset(
    {RECORD_PROCESSING_STARTED, RECORD_PROCESSING_RESULT, RECORD_PROCESSING_FAILURE}
)
SHORT_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=2)
SHORT_TIMEOUT = timedelta(seconds=5)


class _ShortRecordSteps(WorkflowOutboundInterceptor):
    def start_activity(self, input: StartActivityInput) -> ActivityHandle[object]:
        if input.activity in RECORD_STEPS:
            input.retry_policy = SHORT_RETRY
            input.start_to_close_timeout = SHORT_TIMEOUT
        return super().start_activity(input)


class _Inbound(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_ShortRecordSteps(outbound))


class ShortWriteBack(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return next

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _Inbound


if __name__ == "__main__":
    run_process(lambda settings: temporal_worker(settings, interceptors=[ShortWriteBack()]))
