"""structlog, configured once per process; stdlib loggers come out the same way."""

from __future__ import annotations

import logging
import sys

import structlog
from temporalio import activity, workflow

from infrastructure.config import Settings


def configure_logging(settings: Settings) -> None:
    """JSON lines for machines, a readable console for people (``LOG_FORMAT``)."""
    fmt = settings.log_format or ("console" if sys.stdout.isatty() else "json")
    renderer: structlog.types.Processor = (
        structlog.dev.ConsoleRenderer() if fmt == "console" else structlog.processors.JSONRenderer()
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _drop_color_message,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    # temporalio appends its context to the message by default; the same context is also in
    # the record's extras (temporal_workflow, temporal_activity), so the event stays a name.
    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
    # uvicorn installs its own handlers; route its records through ours instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True


def _drop_color_message(
    _: object, __: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    # uvicorn passes a copy of each message with ANSI colour codes; the renderer has its own.
    event_dict.pop("color_message", None)
    return event_dict
