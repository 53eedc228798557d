"""A lease in the book's database that lets one instance of the service run the schedule: taken or renewed by a
single conditional UPDATE (or the first INSERT), which SQLite and PostgreSQL both apply atomically, so of two
instances on one database only one holds it; another takes over only once it has expired (the holder stopped
renewing). Times are the wall clock (UTC), whatever clock the replay runs on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError

from tokenclear.store.models import Lease
from tokenclear.store.store import Store, StoreError

SCHEDULE = "schedule"


class Leases:
    def __init__(self, store: Store, holder: str, *, ttl: timedelta = timedelta(seconds=15), now=None) -> None:
        self.store, self.holder, self.ttl = store, holder, ttl
        self._now = now or (lambda: datetime.now(UTC))

    def acquire(self, name: str = SCHEDULE) -> bool:
        """Take or renew the lease ``name``; True if this holder has it until now + ttl."""
        now = self._now()
        try:
            with self.store.session() as session:
                taken = session.execute(
                    update(Lease).where(Lease.name == name, or_(Lease.holder == self.holder, Lease.expires_at < now))
                    .values(holder=self.holder, expires_at=now + self.ttl)).rowcount
                if taken:
                    return True
                if session.get(Lease, name) is not None:
                    return False
                session.add(Lease(name=name, holder=self.holder, expires_at=now + self.ttl))
            return True
        except (IntegrityError, StoreError):  # the other instance inserted it first, or held the write lock
            return False

    def release(self, name: str = SCHEDULE) -> None:
        with self.store.session() as session:
            session.execute(update(Lease).where(Lease.name == name, Lease.holder == self.holder)
                            .values(expires_at=self._now() - timedelta(seconds=1)))

    def holder_of(self, name: str = SCHEDULE) -> tuple[str, datetime] | None:
        with self.store.session() as session:
            lease = session.get(Lease, name)
            return None if lease is None else (lease.holder, lease.expires_at)
