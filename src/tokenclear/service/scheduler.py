"""The service's schedule, on the service clock, run only by the instance holding the lease:

- the end-of-day cycle at ``CYCLE_HOUR_UTC`` after each day on which any of the book's products traded (the union
  of their calendars: a book with a 24/7 crypto future cycles every day, weekends included; an XNYS-only book
  on business days), each cycle valuing that day's closes; cycles missed while the service was down run in order.
  One cycle is the end of day of every product calendar at once: each calendar's session of that date has closed
  by then (XNYS by 21:00 UTC, CMES by 23:00, 24/5 and 24/7 at 24:00), which the scheduler checks at start against
  exchange_calendars' close times, refusing a calendar that closes later (its closes would be valued a day late);
  a cross-margined account is valued once, every product at its latest close, and a product whose calendar had
  no session that day keeps its last close (no variation, the holiday add-on as it falls);
- margin-call deadlines, escalation and defaults (``process_due``) every tick (a tick is a wall second: a minute
  of the schedule or less at any replay speed up to 60x, and at 3,600x an hour of replay a tick);
- an intraday revaluation when a guarded price has moved past the threshold since the last cycle;
- once a month, the haircut review (each token's haircut against the last review's, with the component that
  drove the change) and the default fund's re-sizing (Cover 2 over the stress library).

Every job runs under a key (the cycle's, ``haircut-review:2023-04``, ``fund-sizing:2023-04``) so a restart or a
second instance never runs it twice.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

import numpy as np
import structlog
from sqlalchemy import select

from tokenclear.clearing.demo import CYCLE_HOUR_UTC
from tokenclear.collateral.haircuts import COMPONENTS
from tokenclear.collateral.review import compare
from tokenclear.default import fund
from tokenclear.errors import ConfigurationError
from tokenclear.instruments.underlyings import underlying_spec
from tokenclear.market import calendars
from tokenclear.service.core import Service
from tokenclear.store.models import Cycle, FundSizing, ServiceEvent
from tokenclear.store.queries import utc

log = structlog.get_logger("tokenclear.scheduler")

RETRY_AFTER_S = 30.0  # wall seconds before a failed job is tried again


def check_closes(latest: dict[str, timedelta], cycle_hour: int = CYCLE_HOUR_UTC) -> dict[str, str]:
    """Each calendar's latest session close as ``HH:MM UTC`` counted from its date's 00:00 UTC (24:00: the end of
    that date); refused when it falls after the end-of-day cycle (``cycle_hour`` the next morning), for that
    calendar's closes would not be in the cycle of their date."""
    out = {}
    for name, close in latest.items():
        hours, rest = divmod(int(close.total_seconds()), 3600)
        out[name] = f"{hours:02d}:{rest // 60:02d} UTC"
        if close > timedelta(days=1, hours=cycle_hour):
            raise ConfigurationError(
                f"calendar {name}'s sessions close as late as {out[name]} (hours after their date's 00:00 UTC), "
                f"after the end-of-day cycle at {24 + cycle_hour:02d}:00: its closes would be valued a day late; "
                "serve products of calendars that close by then")
    return out


class Scheduler:
    def __init__(self, service: Service, *, threshold: float | None = None, tick_s: float = 1.0) -> None:
        self.service, self.tick_s = service, tick_s
        self.threshold = service.settings.intraday_threshold if threshold is None else threshold
        self.status: dict = {"leader": False, "last_tick": None, "last_error": None, "cycles_run": 0}
        self._retry_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._heartbeat: threading.Thread | None = None
        self.calendars = self._calendars()
        self.closes = self._check_closes()

    def _calendars(self) -> list[str]:
        """The calendars of the book's products (by underlying), '24/7' if any trades every day."""
        risk = self.service.workflow.risk
        book = self.service.workflow.book()
        names = {underlying_spec(risk.specs, one.underlying, risk.config.risk_calendar).calendar
                 for one in risk.catalogue.select(book.instruments)}
        return sorted(names) or [risk.config.risk_calendar]

    def _check_closes(self) -> dict[str, str]:
        """Each product calendar's latest session close over the two years around the service clock (see
        :func:`check_closes`)."""
        now = np.datetime64(self.service.clock.now().date(), "D")
        return check_closes({name: calendars.latest_close(name, now - 365, now + 365) for name in self.calendars})

    # ---- what is due ----------------------------------------------------------------------------------
    def trades(self, day: np.datetime64) -> bool:
        return bool(self.sessions_closed(day))

    def sessions_closed(self, day: np.datetime64) -> list[str]:
        """The product calendars with a session on ``day``: the end-of-day cycle after it closes those."""
        return [name for name in self.calendars if name == calendars.ALWAYS_OPEN or calendars.is_session(name, day)]

    def due_cycles(self, now: datetime) -> list[datetime]:
        """The end-of-day cycles due by ``now`` after the book's last scheduled (or opening) cycle."""
        with self.service.store.session() as session:
            last = session.scalar(select(Cycle.at).where(Cycle.kind.in_(("scheduled", "opening")))
                                  .order_by(Cycle.at.desc()))
        if last is None:
            return []
        last = utc(last)
        at = last.replace(hour=CYCLE_HOUR_UTC, minute=0, second=0, microsecond=0)
        out = []
        while True:
            if at > last and at <= now and self.trades(np.datetime64(at.date(), "D") - 1):
                out.append(at)
            if at > now:
                return out
            at += timedelta(days=1)

    # ---- one tick -------------------------------------------------------------------------------------
    def tick(self) -> dict:
        """Everything due now, if this instance holds the lease; returns what was done."""
        service = self.service
        done: dict = {"cycles": [], "moved": [], "intraday": None, "monthly": []}
        if self._heartbeat is None:  # driven tick by tick (tests): take the lease now
            self.status["leader"] = service.leases.acquire()
        self.status["last_tick"] = service.clock.now().isoformat()
        if not self.status["leader"] or time.monotonic() < self._retry_at:
            return done
        try:
            with service.lock:
                now = service.clock.now()
                done["cycles"] += service.workflow.complete_open_cycles()  # a crash's, before anything new
                for at in self.due_cycles(now):
                    summary = service.workflow.run_cycle(at)
                    done["cycles"].append(summary.key)
                    self.status["cycles_run"] += 1
                    done["monthly"] += self.monthly(at)
                done["moved"] = service.workflow.process_due()
                if not done["cycles"] and self._has_cycle():
                    summary = service.workflow.intraday(now, threshold=self.threshold)
                    done["intraday"] = None if summary is None else summary.key
            self.status["last_error"] = None
        except Exception as error:  # noqa: BLE001 - the schedule goes on; the error is shown on /status and logged
            log.exception("scheduled job failed", error=str(error))
            self.status["last_error"] = f"{type(error).__name__}: {error}"
            self._retry_at = time.monotonic() + RETRY_AFTER_S
        return done

    def _has_cycle(self) -> bool:
        with self.service.store.session() as session:
            return session.scalar(select(Cycle.id).where(Cycle.status == "closed").limit(1)) is not None

    # ---- monthly jobs ---------------------------------------------------------------------------------
    def monthly(self, at: datetime) -> list[str]:
        """The month's haircut review and fund sizing, once each (after the month's first cycle)."""
        month = at.strftime("%Y-%m")
        done = []
        if self._event(f"haircut-review:{month}") is None:
            self._record(f"haircut-review:{month}", "haircut-review", at, self.haircut_review(at))
            done.append(f"haircut-review:{month}")
        if self._event(f"fund-sizing:{month}") is None:
            self._record(f"fund-sizing:{month}", "fund-sizing", at, self.fund_sizing(at, month))
            done.append(f"fund-sizing:{month}")
        return done

    def haircut_review(self, at: datetime) -> dict:
        """Each token's calibrated haircut as of the last closes against the last review's, by component."""
        workflow = self.service.workflow
        day = np.datetime64(at.date(), "D") - 1
        table = workflow.parameters.table(day)
        with self.service.store.session() as session:
            last = session.scalar(select(ServiceEvent).where(ServiceEvent.kind == "haircut-review")
                                  .order_by(ServiceEvent.at.desc()))
            previous = {} if last is None else {row["asset"]: row for row in last.detail["table"]}
        changes = compare(previous, table)
        return {"as_of": str(day), "table": table.rows(), "components": list(COMPONENTS),
                "previous": None if last is None else last.key,
                "changes": [{"asset": c.asset, "previous": c.previous, "current": c.current, "change": c.change,
                             "driver": c.driver, "driver_change": c.driver_change} for c in changes]}

    def fund_sizing(self, at: datetime, month: str) -> dict:
        """The fund re-sized on the book as it stands (unless this month's opening already sized it)."""
        with self.service.store.session() as session:
            existing = session.scalar(select(FundSizing).order_by(FundSizing.at.desc()))
            if existing is not None and utc(existing.at).strftime("%Y-%m") == month:
                return {"sizing": existing.id, "fund": str(existing.fund), "reused": True}
        sizing = fund.size(self.service.settings, self.service.workflow, at=at)
        with self.service.store.session() as session:
            row = session.get(FundSizing, sizing.id)
            due = {member: str(value) for member, value in fund.due(session, row).items()}
        return {"sizing": sizing.id, "fund": str(sizing.fund), "scenario": sizing.scenario, "due": due,
                "reused": False}

    def _event(self, key: str) -> ServiceEvent | None:
        with self.service.store.session() as session:
            return session.scalar(select(ServiceEvent).where(ServiceEvent.key == key))

    def _record(self, key: str, kind: str, at: datetime, detail: dict) -> None:
        with self.service.store.session() as session:
            session.add(ServiceEvent(key=key, kind=kind, at=at, detail=detail))

    # ---- the thread -----------------------------------------------------------------------------------
    def start(self) -> None:
        """The schedule's thread, and the lease's own heartbeat: renewed every third of its time to live whatever
        the schedule is doing, so a cycle longer than the lease does not let a second instance start it too."""
        self.status["leader"] = self.service.leases.acquire()
        self._heartbeat = threading.Thread(target=self._renew, name="tokenclear-lease", daemon=True)
        self._heartbeat.start()
        self._thread = threading.Thread(target=self._loop, name="tokenclear-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        self._stop.set()
        for thread in (self._thread, self._heartbeat):
            if thread is not None:
                thread.join(timeout)
        self.service.leases.release()

    def _renew(self) -> None:
        every = self.service.leases.ttl.total_seconds() / 3
        while not self._stop.wait(every):
            self.status["leader"] = self.service.leases.acquire()

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.tick()
            self._stop.wait(max(0.0, self.tick_s - (time.monotonic() - started)))
