"""Dates as a command line gives them (light: no numeric core imported)."""

from __future__ import annotations

import numpy as np

from tokenclear.errors import InputError


def iso_day(text: str) -> np.datetime64:
    """``text`` as ``datetime64[D]``, strictly YYYY-MM-DD (``2026-02`` or ``20260203`` raise ValueError)."""
    if len(text) != 10:
        raise ValueError(text)
    return np.datetime64(text, "D")


def parse_as_of(text: str | None, field: str = "--as-of") -> np.datetime64 | None:
    """A command-line date, strictly YYYY-MM-DD; an :class:`InputError` naming ``field`` otherwise."""
    if text is None:
        return None
    try:
        return iso_day(text)
    except ValueError:
        raise InputError(f"'{text}' is not an ISO date (YYYY-MM-DD)", field=field) from None


def parse_period(text: str | None, field: str) -> tuple[np.datetime64, np.datetime64] | None:
    """``START:END`` (ISO dates), or None for None or ``none``."""
    if text is None or text.lower() == "none":
        return None
    parts = text.split(":")
    if len(parts) != 2:
        raise InputError(f"'{text}' is not START:END", field=field)
    start, end = (parse_as_of(part) for part in parts)
    assert start is not None and end is not None
    if start > end:
        raise InputError(f"start {start} is after end {end}", field=field)
    return start, end
