"""Structured logging (structlog): one place that decides where log lines go and how they look."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog


def configure(*, level: int = logging.INFO, json: bool = False, stream: TextIO | None = None) -> None:
    """Log lines at ``level`` and above to ``stream`` (default stderr), as JSON or for a console."""
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso", utc=True),
                    renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=False)
