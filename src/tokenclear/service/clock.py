"""The service's clocks: the wall clock, or a replay clock that starts at a moment of the past and runs
``speed`` times faster than the wall clock (``--clock replay --from 2023-03-10T00:00Z --speed 3600``: an hour a
second), so a stress weekend can be watched live through the API."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from tokenclear.errors import InputError


class ReplayClock:
    """``start + (wall seconds since run()) * speed``, never going back: made paused at ``start`` (the service opens
    its book first), running from :meth:`run`; :meth:`hold` moves it to a later moment (a restart on a book whose
    last event is later than ``start``)."""

    def __init__(self, start: datetime, speed: float, *, wall=time.monotonic) -> None:
        if start.tzinfo is None:
            raise InputError("the replay start must carry a time zone (e.g. 2023-03-10T00:00Z)", field="--from")
        if not 0 < speed <= 1_000_000:
            raise InputError(f"speed {speed}: must lie in (0, 1000000]", field="--speed")
        self.start, self.speed, self._wall = start.astimezone(UTC), float(speed), wall
        self._origin = wall()
        self._paused = True

    def now(self) -> datetime:
        if self._paused:
            return self.start
        return self.start + timedelta(seconds=(self._wall() - self._origin) * self.speed)

    def hold(self, moment: datetime) -> None:
        """Carry on from ``moment`` if it is later than now."""
        if moment > self.now():
            self.start, self._origin = moment, self._wall()

    set = hold  # what a book's set-up calls (it never moves a clock back)

    def pause(self) -> None:
        """Stop the clock where it is (while a new book is opened, which takes wall time)."""
        self.start, self._paused = self.now(), True

    def run(self) -> None:
        if self._paused:
            self._origin, self._paused = self._wall(), False

    def describe(self) -> dict:
        return {"kind": "replay", "start": self.start.isoformat(), "speed": self.speed}


class WallClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def set(self, moment: datetime) -> None:
        """A book's set-up moves the clock to the moment it opens at: on the wall clock that is now, or before."""
        self.hold(moment)

    def pause(self) -> None:
        """The wall clock does not stop."""

    def run(self) -> None:
        """The wall clock does not stop."""

    def hold(self, moment: datetime) -> None:
        if moment > self.now():
            raise InputError(f"the book's last event ({moment.isoformat()}) is in the future of the wall clock: "
                             "serve it with --clock replay", field="--clock")

    def describe(self) -> dict:
        return {"kind": "wall", "speed": 1.0}


def parse_moment(text: str, field: str = "--from") -> datetime:
    """An ISO 8601 moment with its zone (``Z`` or an offset), as UTC."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InputError(f"'{text}' is not an ISO 8601 moment such as 2023-03-10T00:00Z", field=field) from None
    if moment.tzinfo is None:
        raise InputError(f"'{text}' has no time zone: write 2023-03-10T00:00Z", field=field)
    return moment.astimezone(UTC)
