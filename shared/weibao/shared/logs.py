"""structlog, configured once: JSON lines in production, readable lines in a terminal."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from weibao.shared.settings import environment


def configure(*, json: bool | None = None, level: str | None = None) -> None:
    """WEIBAO_LOG_FORMAT=json|console decides; unset, JSON unless stderr is a terminal."""
    if json is None:
        chosen = environment().log_format.lower()
        json = chosen == "json" if chosen in ("json", "console") else not sys.stderr.isatty()
    level_name = (level or environment().log_level).upper()
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
