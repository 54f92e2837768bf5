"""structlog, configured once: JSON lines in production, readable lines in a terminal."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import structlog


def configure(*, json: bool | None = None, level: str | None = None) -> None:
    """JSON when asked, or when stderr is not a terminal (a supervisor, a container)."""
    if json is None:
        json = os.environ.get("WEIBAO_LOG_FORMAT", "").lower() == "json" or not sys.stderr.isatty()
    level_name = (level or os.environ.get("WEIBAO_LOG_LEVEL", "INFO")).upper()
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level_name]),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
