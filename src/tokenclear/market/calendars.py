"""Business-day calendars from ``exchange_calendars`` ("XNYS", "CMES", "XTKS", "24/7", ...).

Business-day logic lives only here. Dates are ``datetime64[D]``.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import warnings
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path

import numpy as np

from tokenclear.arrays import DateArray1D
from tokenclear.errors import ConfigurationError

_START = "1985-01-01"

ALWAYS_OPEN = "24/7"


def _load(name: str) -> DateArray1D:
    import exchange_calendars as xcals  # with pandas, 1-2 s to import and build: a cached run skips both

    with warnings.catch_warnings():  # pandas deprecation notices raised inside exchange_calendars
        warnings.simplefilter("ignore")
        try:
            calendar = xcals.get_calendar(name, start=_START)
        except xcals.errors.InvalidCalendarName:
            raise ConfigurationError(f"unknown calendar '{name}'; use an exchange_calendars name such as "
                                     "XNYS, CMES, XTKS or 24/7") from None
        except ValueError:
            calendar = xcals.get_calendar(name)
        return calendar.sessions.values.astype("datetime64[D]")


def cache_file(name: str) -> Path | None:
    """Where ``name``'s sessions are cached: ``TOKENCLEAR_CACHE_DIR`` (default ``~/.cache/tokenclear``), one
    file per calendar, exchange_calendars version and day (the library's sessions run to a year after today);
    ``None`` when ``TOKENCLEAR_CACHE_DIR`` is empty (no cache)."""
    root = os.environ.get("TOKENCLEAR_CACHE_DIR", str(Path("~/.cache/tokenclear").expanduser()))
    if not root:
        return None
    stem = "".join(char if char.isalnum() else "_" for char in name)
    return Path(root) / f"sessions-{stem}-{version('exchange_calendars')}-{dt.date.today().isoformat()}.npy"


@lru_cache(maxsize=32)
def sessions(name: str) -> DateArray1D:
    """All sessions of calendar ``name`` the library knows (from 1985 where available), from the cache file
    (:func:`cache_file`) when it holds them; a cache that cannot be read or written is only a slower run."""
    path = cache_file(name)
    if path is not None and path.is_file():
        try:
            days = np.load(path, allow_pickle=False)
            if days.dtype == np.dtype("datetime64[D]") and days.ndim == 1 and days.size:
                return days
        except (OSError, ValueError, EOFError):
            pass
    days = _load(name)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            for old in path.parent.glob(f"{path.name.split('-')[0]}-{path.name.split('-')[1]}-*.npy"):
                if old != path:
                    old.unlink(missing_ok=True)  # an earlier day's or version's
            with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
                np.save(handle, days, allow_pickle=False)
            os.replace(handle.name, path)  # atomic: a concurrent reader sees the old file or the whole new one
        except OSError:
            pass
    return days


def is_session(name: str, date: np.datetime64) -> bool:
    days = sessions(name)
    index = np.searchsorted(days, date)
    return bool(index < days.size and days[index] == date)


def latest_close(name: str, start: np.datetime64, end: np.datetime64) -> dt.timedelta:
    """The latest a session of ``name`` dated in [start, end] closes, as time after 00:00 UTC of its date (21:00
    for XNYS in winter, 23:00 for CMES at most; a 24/7 or 24/5 day closes at 24:00). Reads exchange_calendars'
    close times (not cached: for a service's start, not a margin run)."""
    if name == ALWAYS_OPEN:
        return dt.timedelta(days=1)
    import exchange_calendars as xcals
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            calendar = xcals.get_calendar(name, start=_START)
        except ValueError:
            calendar = xcals.get_calendar(name)
        closes = calendar.closes.loc[str(start):str(end)]
    if closes.empty:
        return dt.timedelta(0)
    after = closes.dt.tz_convert("UTC").dt.tz_localize(None) - pd.to_datetime(closes.index)
    return after.max().to_pytimedelta()


def next_session(name: str, date: np.datetime64) -> np.datetime64:
    """First session of ``name`` strictly after ``date``."""
    days = sessions(name)
    index = np.searchsorted(days, date, side="right")
    if index >= days.size:
        raise ConfigurationError(f"calendar '{name}' has no session after {date}")
    return days[index]


def closed_cash_days(product_calendar: str, cash_calendar: str, as_of: np.datetime64, mpor_days: int) -> int:
    """Sessions the product trades, beyond ``mpor_days``, before cash has moved ``mpor_days`` times.

    The exposure of a position margined at ``as_of`` runs until the ``mpor_days``-th cash
    session after it; this counts the product's sessions in ``(as_of, that session]`` less
    ``mpor_days`` (at least 0). With a 2-day MPOR on XNYS cash: 0 for an index future on
    any day, 2 for a 24/7 crypto future on a Thursday (Fri to Mon is four calendar days)
    and on a Friday (Sat to Tue), 3 before Good Friday, and the holiday trading days of
    JSCC's holiday-trading regime.
    """
    end = as_of
    for _ in range(mpor_days):
        end = next_session(cash_calendar, end)
    days = sessions(product_calendar)
    lo = np.searchsorted(days, as_of, side="right")
    hi = np.searchsorted(days, end, side="right")
    return int(max(hi - lo - mpor_days, 0))


def periods_per_year(name: str) -> float:
    """Sessions per year used to annualise daily volatility (365 for 24/7, else 252)."""
    return 365.0 if name == ALWAYS_OPEN else 252.0
