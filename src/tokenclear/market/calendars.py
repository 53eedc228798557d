"""Business-day calendars from ``exchange_calendars`` ("XNYS", "CMES", "XTKS", "24/7", ...).

Business-day logic lives only here. Dates are ``datetime64[D]``.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import exchange_calendars as xcals
import numpy as np
import pandas as pd

from tokenclear.arrays import DateArray1D
from tokenclear.errors import ConfigurationError

_START = pd.Timestamp("1985-01-01")

ALWAYS_OPEN = "24/7"


@lru_cache(maxsize=32)
def _calendar(name: str) -> xcals.ExchangeCalendar:
    with warnings.catch_warnings():  # pandas deprecation notices raised inside exchange_calendars
        warnings.simplefilter("ignore")
        return _load(name)


def _load(name: str) -> xcals.ExchangeCalendar:
    try:
        return xcals.get_calendar(name, start=_START)
    except xcals.errors.InvalidCalendarName:
        raise ConfigurationError(f"unknown calendar '{name}'; use an exchange_calendars name such as "
                                 "XNYS, CMES, XTKS or 24/7") from None
    except ValueError:
        return xcals.get_calendar(name)


@lru_cache(maxsize=32)
def sessions(name: str) -> DateArray1D:
    """All sessions of calendar ``name`` the library knows (from 1985 where available)."""
    return _calendar(name).sessions.values.astype("datetime64[D]")


def is_session(name: str, date: np.datetime64) -> bool:
    days = sessions(name)
    index = np.searchsorted(days, date)
    return bool(index < days.size and days[index] == date)


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
