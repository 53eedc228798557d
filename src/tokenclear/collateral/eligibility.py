"""Eligibility schedules (pure): versioned rules per clearing house, and the rule that decides.

A rule matches on any of asset, kind, tokenized, issuer country and currency (blank = any) and is
in effect from ``effective_from`` to ``effective_to`` inclusive (blank end = open). The most
specific rule in effect decides: a rule naming the asset beats any rule on attributes, and among
attribute rules the one matching more fields wins. Between an ``eligible`` and an ``ineligible``
rule of equal specificity, ``ineligible`` wins. No rule in effect = not eligible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tokenclear.collateral.assets import Asset
from tokenclear.errors import ConfigurationError

MATCH_FIELDS = ("asset", "kind", "tokenized", "issuer_country", "currency")
ASSET_WEIGHT = len(MATCH_FIELDS)  # an asset rule outranks any combination of attributes


@dataclass(frozen=True)
class Rule:
    """One row of a schedule. Match fields: ``None`` = any. ``source``: where it was read (file:line)."""

    schedule: str
    rule: str
    effective_from: np.datetime64
    effective_to: np.datetime64 | None
    eligible: bool
    asset: str | None = None
    kind: str | None = None
    tokenized: bool | None = None
    issuer_country: str | None = None
    currency: str | None = None
    note: str = ""
    source: str = ""

    @property
    def specificity(self) -> int:
        if self.asset is not None:
            return ASSET_WEIGHT
        return sum(getattr(self, name) is not None for name in MATCH_FIELDS)

    def in_effect(self, date: np.datetime64) -> bool:
        return self.effective_from <= date and (self.effective_to is None or date <= self.effective_to)

    def matches(self, asset: Asset) -> bool:
        return ((self.asset is None or self.asset == asset.asset)
                and (self.kind is None or self.kind == asset.kind)
                and (self.tokenized is None or self.tokenized == asset.tokenized)
                and (self.issuer_country is None or self.issuer_country == asset.issuer_country)
                and (self.currency is None or self.currency == asset.currency))

    def overlaps(self, other: Rule) -> bool:
        """Same schedule, same match fields and intersecting periods: a duplicate."""
        same = self.schedule == other.schedule and all(getattr(self, name) == getattr(other, name)
                                                       for name in MATCH_FIELDS)
        far = np.datetime64("9999-12-31")
        return same and (self.effective_from <= (other.effective_to or far)
                         and other.effective_from <= (self.effective_to or far))

    def describe(self) -> str:
        fields = [f"{name}={_show(getattr(self, name))}" for name in MATCH_FIELDS if getattr(self, name) is not None]
        period = f"from {self.effective_from}" + (f" to {self.effective_to}" if self.effective_to else "")
        where = f" [{self.source}]" if self.source else ""
        text = f"{self.schedule} rule '{self.rule}'{where} ({', '.join(fields)}; {period})"
        return text + (f": {self.note}" if self.note else "")


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


@dataclass(frozen=True)
class Decision:
    asset: str
    schedule: str
    date: np.datetime64
    eligible: bool
    rule: Rule | None

    def explain(self) -> str:
        verdict = "eligible" if self.eligible else "not eligible"
        if self.rule is None:
            return f"{self.asset} is {verdict} at {self.schedule} on {self.date}: no rule in effect lists it"
        return f"{self.asset} is {verdict} at {self.schedule} on {self.date}: {self.rule.describe()}"


@dataclass(frozen=True)
class Schedules:
    """Every schedule's rules."""

    rules: tuple[Rule, ...]

    @property
    def names(self) -> list[str]:
        return sorted({rule.schedule for rule in self.rules})

    def resolve_name(self, name: str) -> str:
        """A schedule by name, case and separators ignored (``ice-clear-europe`` = ``ICE_Clear_Europe``)."""
        def key(text: str) -> str:
            return "".join(ch for ch in text.lower() if ch.isalnum())

        for known in self.names:
            if key(known) == key(name):
                return known
        raise ConfigurationError(f"unknown clearing house or schedule '{name}' (known: {', '.join(self.names)})")

    def decide(self, asset: Asset, schedule: str, date: np.datetime64) -> Decision:
        schedule = self.resolve_name(schedule)
        date = np.datetime64(date, "D")
        candidates = [rule for rule in self.rules
                      if rule.schedule == schedule and rule.in_effect(date) and rule.matches(asset)]
        if not candidates:
            return Decision(asset.asset, schedule, date, False, None)
        # most specific first; at equal specificity ineligible (False < True) first
        winner = min(candidates, key=lambda rule: (-rule.specificity, rule.eligible))
        return Decision(asset.asset, schedule, date, winner.eligible, winner)

    def eligible_mask(self, assets: tuple[Asset, ...], schedule: str, date: np.datetime64) -> np.ndarray:
        """bool[assets]: each asset's decision at ``schedule`` on ``date``."""
        return np.array([self.decide(asset, schedule, date).eligible for asset in assets], dtype=bool)
