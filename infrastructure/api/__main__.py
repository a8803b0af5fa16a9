"""Runs the API: ``python -m infrastructure.api`` (``make run``)."""

from __future__ import annotations

import uvicorn

from infrastructure.api.security import AnonymousAccessRefused, check_anonymous_access
from infrastructure.config import Settings
from infrastructure.di.container import api_app
from infrastructure.logging import configure_logging


def main() -> None:
    settings = Settings()
    configure_logging(settings)
    try:
        check_anonymous_access(
            host=settings.api_host,
            api_keys=[*settings.api_key_list, *settings.admin_api_key_list],
            allow_anonymous=settings.allow_anonymous,
        )
    except AnonymousAccessRefused as err:
        raise SystemExit(f"refusing to start: {err}") from None
    uvicorn.run(
        api_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,  # our logging configuration, not uvicorn's
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
