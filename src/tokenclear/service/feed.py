"""Prices the feeds post to the service (``POST /prices``), stored, then read by the cycle's oracle guard: the
latest quote of each source of a series, if one is fresh (no older than ``max_age_s`` at the moment asked, not
stamped after it); otherwise the shipped daily closes. The guard decides whether a quote is usable (quorum,
agreement, TWAP, staleness): a feed can post a price, not force one."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from tokenclear.clearing.interfaces import PriceFeed
from tokenclear.market.oracle import Quote
from tokenclear.store.models import PriceQuote
from tokenclear.store.queries import utc
from tokenclear.store.store import Store

MAX_AGE_S = 3600.0  # the cycle's guard takes a quote at most an hour old (system.DAILY_CLOSE_GUARD)


class PostedFeed:
    def __init__(self, store: Store, base: PriceFeed, *, max_age_s: float = MAX_AGE_S) -> None:
        self.store, self.base, self.max_age = store, base, timedelta(seconds=max_age_s)

    def post(self, series: str, source: str, price: Decimal, at: datetime, posted_by: str) -> None:
        with self.store.session() as session:
            session.add(PriceQuote(series=series, source=source, price=str(price), at=at, posted_by=posted_by))

    def quotes(self, series: str, at: datetime) -> list[Quote]:
        with self.store.session() as session:
            rows = session.scalars(select(PriceQuote).where(PriceQuote.series == series, PriceQuote.at <= at,
                                                            PriceQuote.at >= at - self.max_age)
                                   .order_by(PriceQuote.at.desc(), PriceQuote.id.desc())).all()
        latest: dict[str, Quote] = {}
        for row in rows:
            latest.setdefault(row.source, Quote(row.source, float(row.price), utc(row.at)))
        return list(latest.values()) or self.base.quotes(series, at)
