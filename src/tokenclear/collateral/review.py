"""The monthly haircut review (pure): previous published haircuts against new ones, with the
component that drove each change (CFTC: haircuts reviewed at least monthly)."""

from __future__ import annotations

from dataclasses import dataclass

from tokenclear.collateral.haircuts import COMPONENTS, HaircutTable

#: Columns of a published haircut file, as ``tokenclear haircuts --out`` writes it.
TABLE_COLUMNS = ("asset", *COMPONENTS, "published")
#: Changes smaller than this are the file's rounding (6 decimals), not a change.
NOISE = 5e-6


@dataclass(frozen=True)
class Change:
    asset: str
    previous: float | None  # None = new asset
    current: float | None  # None = no longer in the registry
    driver: str  # the component with the largest absolute change, or "new" / "removed" / "none"
    driver_change: float

    @property
    def change(self) -> float | None:
        if self.previous is None or self.current is None:
            return None
        return self.current - self.previous


def compare(previous: dict[str, dict[str, float]], current: HaircutTable) -> list[Change]:
    """One change per asset of either table, in the current table's order then the removed ones."""
    out = []
    for i, asset in enumerate(current.assets):
        new = float(current.published[i])
        old = previous.get(asset)
        if old is None:
            out.append(Change(asset, None, new, "new", 0.0))
            continue
        deltas = {name: float(getattr(current, name)[i]) - old[name] for name in COMPONENTS}
        driver = max(deltas, key=lambda name: abs(deltas[name]))
        if abs(deltas[driver]) < NOISE:
            driver = "none"
        out.append(Change(asset, old["published"], new, driver, deltas.get(driver, 0.0)))
    for asset, old in previous.items():
        if asset not in current.assets:
            out.append(Change(asset, old["published"], None, "removed", 0.0))
    return out
