"""Read the collateral reference data (the only I/O of this package). Errors name file, line, field."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tokenclear.collateral.assets import KINDS, PRICE_MODELS, REGISTRY_KINDS, YIELD_MODELS, Asset, Registry
from tokenclear.collateral.eligibility import Rule, Schedules
from tokenclear.collateral.limits import DIMENSIONS, CreditFloors, Limit, ScheduleFloor, ScheduleFloors
from tokenclear.collateral.returns import fx_name
from tokenclear.csvfiles import parse_date, parse_float, read_rows
from tokenclear.errors import InputError
from tokenclear.market.files import load_folder
from tokenclear.market.history import MarketData

CCP_TABLE_COLUMNS = ("CME", "Eurex", "ICE_Clear_Europe", "LCH_Ltd", "OCC")
#: The FIA white paper behind the clearing houses' table was published in June 2025.
CCP_TABLE_EFFECTIVE = np.datetime64("2025-06-01")
VOLUME_UNITS = ("usd", "shares")


@dataclass(frozen=True)
class CollateralFiles:
    """Paths of the reference data (default: ``data/collateral`` of the checkout)."""

    folder: Path

    @property
    def assets(self) -> Path:
        return self.folder / "assets.csv"

    @property
    def schedules(self) -> Path:
        return self.folder / "schedules.csv"

    @property
    def ccp_table(self) -> Path:
        return self.folder / "ccp_non_cash_collateral.csv"

    @property
    def credit_floors(self) -> Path:
        return self.folder / "credit_floors.csv"

    @property
    def limits(self) -> Path:
        return self.folder / "limits.csv"

    @property
    def schedule_floors(self) -> Path:
        return self.folder / "schedule_floors.csv"


def _choice(value: str, allowed: tuple[str, ...], *, path: Path, line: int, field: str) -> str:
    if value not in allowed:
        raise InputError(f"'{value}' is not one of {', '.join(allowed)}", path=path, line=line, field=field)
    return value


def _yes_no(value: str, *, path: Path, line: int, field: str, allow_blank: bool = False) -> bool | None:
    if value == "" and allow_blank:
        return None
    return _choice(value.lower(), ("yes", "no"), path=path, line=line, field=field) == "yes"


def _optional(value: str, *, path: Path, line: int, field: str, low: float = 0.0) -> float | None:
    number = parse_float(value, path=path, line=line, field=field, allow_blank=True)
    if np.isnan(number):
        return None
    if number < low:
        raise InputError(f"must be at least {low}", path=path, line=line, field=field)
    return number


def _fraction(value: str, *, path: Path, line: int, field: str, top: float = 1.0) -> float:
    number = parse_float(value, path=path, line=line, field=field)
    if not 0.0 <= number <= top:
        raise InputError(f"{value} must lie in [0, {top}]", path=path, line=line, field=field)
    return number


ASSET_COLUMNS = ["asset", "name", "kind", "tokenized", "currency", "issuer", "issuer_group", "issuer_country",
                 "rating", "price_model", "price_series", "stress_series", "duration_years", "rate_vol_bp",
                 "annual_vol", "settlement_lag_hours", "volume_series", "volume_unit", "adv_usd", "participation",
                 "yield_annual", "yield_pledged", "yield_model", "chains"]


def load_registry(path: Path) -> Registry:
    """The asset registry CSV; each price model's own parameters are required."""
    path = Path(path)
    assets: list[Asset] = []
    seen: set[str] = set()
    for line, row in read_rows(path, ASSET_COLUMNS):
        name = row["asset"]
        if not name:
            raise InputError("asset name is blank", path=path, line=line, field="asset")
        if name in seen:
            raise InputError(f"duplicate asset '{name}'", path=path, line=line, field="asset")
        seen.add(name)
        model = _choice(row["price_model"], PRICE_MODELS, path=path, line=line, field="price_model")
        if model == "series" and not row["price_series"]:
            raise InputError("required for price model 'series'", path=path, line=line, field="price_series")
        needs = {"duration": ("duration_years", "rate_vol_bp"), "volatility": ("annual_vol",)}.get(model, ())
        for field in needs:
            if _optional(row[field], path=path, line=line, field=field) is None:
                raise InputError(f"required for price model '{model}'", path=path, line=line, field=field)
        duration = float(row["duration_years"]) if model == "duration" else None
        rate_vol = float(row["rate_vol_bp"]) if model == "duration" else None
        annual_vol = float(row["annual_vol"]) if model == "volatility" else None
        adv = _optional(row["adv_usd"], path=path, line=line, field="adv_usd")
        unit = row["volume_unit"] or None
        if row["volume_series"]:
            _choice(unit or "", VOLUME_UNITS, path=path, line=line, field="volume_unit")
        participation = (_fraction(row["participation"], path=path, line=line, field="participation")
                         if row["participation"] else 0.10)
        if participation == 0:
            raise InputError("participation must be above 0", path=path, line=line, field="participation")
        currency = row["currency"]
        if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
            raise InputError(f"'{currency}' is not an ISO 4217 code", path=path, line=line, field="currency")
        yield_annual = _fraction(row["yield_annual"], path=path, line=line, field="yield_annual")
        yield_pledged = _fraction(row["yield_pledged"], path=path, line=line, field="yield_pledged")
        if yield_pledged > yield_annual:
            raise InputError("yield_pledged cannot exceed yield_annual", path=path, line=line, field="yield_pledged")
        chains = tuple(part.strip() for part in row["chains"].split("|") if part.strip())
        if not chains:
            raise InputError("name at least one chain (or off-chain)", path=path, line=line, field="chains")
        assets.append(Asset(
            asset=name, name=row["name"],
            kind=_choice(row["kind"], REGISTRY_KINDS, path=path, line=line, field="kind"),
            tokenized=bool(_yes_no(row["tokenized"], path=path, line=line, field="tokenized")),
            currency=currency, issuer=row["issuer"], issuer_group=row["issuer_group"] or row["issuer"],
            issuer_country=row["issuer_country"], rating=row["rating"], price_model=model,
            price_series=row["price_series"] or None, stress_series=row["stress_series"] or None,
            duration_years=duration, rate_vol_bp=rate_vol, annual_vol=annual_vol,
            settlement_lag_hours=parse_float(row["settlement_lag_hours"], path=path, line=line,
                                             field="settlement_lag_hours"),
            volume_series=row["volume_series"] or None, volume_unit=unit, adv_usd=adv, participation=participation,
            yield_annual=yield_annual, yield_pledged=yield_pledged,
            yield_model=_choice(row["yield_model"], YIELD_MODELS, path=path, line=line, field="yield_model"),
            chains=chains))
        if assets[-1].settlement_lag_hours < 0:
            raise InputError("must not be negative", path=path, line=line, field="settlement_lag_hours")
    return Registry(tuple(assets))


SCHEDULE_COLUMNS = ["schedule", "rule", "effective_from", "effective_to", "decision", "asset", "kind", "tokenized",
                    "issuer_country", "currency", "note"]


def load_schedule_rules(path: Path, registry: Registry) -> list[Rule]:
    """Rules of ``schedules.csv``: unknown assets or kinds, bad dates and duplicates fail."""
    path = Path(path)
    rules: list[Rule] = []
    for line, row in read_rows(path, SCHEDULE_COLUMNS):
        if not row["schedule"] or not row["rule"]:
            field = "schedule" if not row["schedule"] else "rule"
            raise InputError("must not be blank", path=path, line=line, field=field)
        start = parse_date(row["effective_from"], path=path, line=line, field="effective_from")
        end = parse_date(row["effective_to"], path=path, line=line, field="effective_to", allow_blank=True)
        if end is not None and end < start:
            raise InputError(f"effective_to {end} is before effective_from {start}", path=path, line=line,
                             field="effective_to")
        if row["asset"] and row["asset"] not in registry:
            raise InputError(f"unknown asset '{row['asset']}' (not in the registry)", path=path, line=line,
                             field="asset")
        if row["kind"]:
            _choice(row["kind"], KINDS, path=path, line=line, field="kind")
        decision = _choice(row["decision"], ("eligible", "ineligible"), path=path, line=line, field="decision")
        rule = Rule(schedule=row["schedule"], rule=row["rule"], effective_from=start, effective_to=end,
                    eligible=decision == "eligible", asset=row["asset"] or None, kind=row["kind"] or None,
                    tokenized=_yes_no(row["tokenized"], path=path, line=line, field="tokenized", allow_blank=True),
                    issuer_country=row["issuer_country"] or None, currency=row["currency"] or None,
                    note=row["note"], source=f"{path.name}:{line}")
        _check_duplicate(rule, rules, path=path, line=line)
        rules.append(rule)
    return rules


def _check_duplicate(rule: Rule, rules: list[Rule], *, path: Path, line: int) -> None:
    for other in rules:
        if other.schedule == rule.schedule and other.rule == rule.rule:
            raise InputError(f"duplicate rule id '{rule.rule}' in schedule {rule.schedule} (first at "
                             f"{other.source})", path=path, line=line, field="rule")
        if rule.overlaps(other):
            raise InputError(f"duplicate rule: same match and overlapping dates as {other.source}", path=path,
                             line=line, field="effective_from")


def load_ccp_table(path: Path) -> list[Rule]:
    """The clearing houses' non-cash table as rules (``1`` = eligible; ``EUR|USD`` = two rules)."""
    path = Path(path)
    rules: list[Rule] = []
    for line, row in read_rows(path, ["collateral_type", "issuer_country", "currency", *CCP_TABLE_COLUMNS]):
        kind = _choice(row["collateral_type"], KINDS, path=path, line=line, field="collateral_type")
        for ccp in CCP_TABLE_COLUMNS:
            if _choice(row[ccp], ("0", "1"), path=path, line=line, field=ccp) == "0":
                continue
            for currency in row["currency"].split("|"):
                country = row["issuer_country"] or None
                rule = Rule(schedule=ccp, rule=f"table-{kind}-{country or 'any'}-{currency}".lower(),
                            effective_from=CCP_TABLE_EFFECTIVE, effective_to=None, eligible=True, kind=kind,
                            issuer_country=country, currency=currency,
                            note="FIA 2025 non-cash collateral table", source=f"{path.name}:{line}")
                _check_duplicate(rule, rules, path=path, line=line)
                rules.append(rule)
    return rules


def load_schedules(files: CollateralFiles, registry: Registry) -> Schedules:
    table = load_ccp_table(files.ccp_table)
    extra = load_schedule_rules(files.schedules, registry)
    merged: list[Rule] = list(table)
    for rule in extra:  # a rule of schedules.csv may not repeat one of the table
        _check_duplicate(rule, merged, path=files.schedules, line=int(rule.source.rsplit(":", 1)[1]))
        merged.append(rule)
    return Schedules(tuple(merged))


def load_credit_floors(path: Path, registry: Registry) -> CreditFloors:
    """``kind,rating,floor``: blank = any; every registry asset must find a floor."""
    path = Path(path)
    entries: dict[tuple[str | None, str | None], float] = {}
    for line, row in read_rows(path, ["kind", "rating", "floor"]):
        kind = _choice(row["kind"], KINDS, path=path, line=line, field="kind") if row["kind"] else None
        key = (kind, row["rating"] or None)
        if key in entries:
            raise InputError("duplicate kind and rating", path=path, line=line, field="rating")
        entries[key] = _fraction(row["floor"], path=path, line=line, field="floor", top=0.99)
    floors = CreditFloors(entries)
    for asset in registry.assets:
        if floors.floor(asset) is None:
            raise InputError(f"no floor for asset {asset.asset} (kind {asset.kind}, rating {asset.rating}); add "
                             "a row or a catch-all with blank kind and rating", path=path)
    return floors


def load_limits(path: Path) -> list[Limit]:
    """``dimension,group,max_share``: ``*`` = every group without a row of its own; ``none`` = no limit."""
    path = Path(path)
    limits: list[Limit] = []
    for line, row in read_rows(path, ["dimension", "group", "max_share"]):
        dimension = _choice(row["dimension"], DIMENSIONS, path=path, line=line, field="dimension")
        if not row["group"]:
            raise InputError("name a group or *", path=path, line=line, field="group")
        if any(one.dimension == dimension and one.group == row["group"] for one in limits):
            raise InputError(f"duplicate limit {dimension} '{row['group']}'", path=path, line=line, field="group")
        if row["max_share"].lower() == "none":
            share = float("inf")
        else:
            share = parse_float(row["max_share"], path=path, line=line, field="max_share")
        if share <= 0:
            raise InputError("must be above 0", path=path, line=line, field="max_share")
        limits.append(Limit(dimension, row["group"], share))
    return limits


def series_needed(registry: Registry, margin_currency: str) -> list[str]:
    """Price series the registry's haircuts read: own, stress proxies and FX."""
    names: set[str] = set()
    for asset in registry.assets:
        names.update(name for name in (asset.price_series, asset.stress_series) if name)
        for currency in {asset.currency, margin_currency} - {"USD"}:
            names.add(fx_name(currency))
    return sorted(names)


def load_market(prices_dir: Path, volumes_dir: Path, registry: Registry,
                margin_currency: str) -> tuple[MarketData, MarketData]:
    """(prices, volumes) for the registry: every series it names, and its volume series."""
    prices = load_folder(prices_dir, series_needed(registry, margin_currency))
    volume_names = sorted({asset.volume_series for asset in registry.assets if asset.volume_series})
    volumes = load_folder(volumes_dir, volume_names, value_column="volume")
    return prices, volumes


def load_haircut_table(path: Path) -> dict[str, dict[str, float]]:
    """A published haircut file (``tokenclear haircuts --out``): asset -> component -> fraction.

    Files written before the schedule-floor component existed have no ``floor`` column: it reads as 0.
    """
    path = Path(path)
    out: dict[str, dict[str, float]] = {}
    from tokenclear.collateral.review import TABLE_COLUMNS  # here: review imports the haircut model (scipy)

    required = [name for name in TABLE_COLUMNS if name != "floor"]
    for line, row in read_rows(path, required):
        if row["asset"] in out:
            raise InputError(f"duplicate asset '{row['asset']}'", path=path, line=line, field="asset")
        out[row["asset"]] = {name: _fraction(row.get(name) or "0", path=path, line=line, field=name)
                             for name in TABLE_COLUMNS[1:]}
    return out


def load_schedule_floors(path: Path, registry: Registry) -> ScheduleFloors:
    """``asset,kind,floor,schedule,source``: each row names an asset or a kind (not both); the file is optional."""
    path = Path(path)
    by_asset: dict[str, ScheduleFloor] = {}
    by_kind: dict[str, ScheduleFloor] = {}
    if not path.is_file():
        return ScheduleFloors(by_asset, by_kind)
    for line, row in read_rows(path, ["asset", "kind", "floor", "schedule", "source"]):
        if bool(row["asset"]) == bool(row["kind"]):
            raise InputError("give an asset or a kind, not both", path=path, line=line, field="asset")
        if not row["schedule"] or not row["source"]:
            raise InputError("a floor needs the schedule and the source it comes from", path=path, line=line,
                             field="schedule" if not row["schedule"] else "source")
        floor = ScheduleFloor(_fraction(row["floor"], path=path, line=line, field="floor", top=0.99),
                              row["schedule"], row["source"])
        if row["asset"]:
            if row["asset"] not in registry.names:
                raise InputError(f"unknown asset '{row['asset']}'", path=path, line=line, field="asset")
            target, key = by_asset, row["asset"]
        else:
            target, key = by_kind, _choice(row["kind"], KINDS, path=path, line=line, field="kind")
        if key in target:
            raise InputError(f"duplicate floor for '{key}'", path=path, line=line, field="asset" if row["asset"]
                             else "kind")
        target[key] = floor
    return ScheduleFloors(by_asset, by_kind)


@dataclass(frozen=True)
class Reference:
    """Everything the collateral core reads, loaded and cross-checked."""

    registry: Registry
    schedules: Schedules
    floors: CreditFloors
    limits: list[Limit]
    schedule_floors: ScheduleFloors = dataclasses.field(default_factory=lambda: ScheduleFloors({}, {}))


def load_reference(folder: Path) -> Reference:
    files = CollateralFiles(Path(folder))
    registry = load_registry(files.assets)
    return Reference(registry, load_schedules(files, registry), load_credit_floors(files.credit_floors, registry),
                     load_limits(files.limits), load_schedule_floors(files.schedule_floors, registry))


def default_as_of(prices: MarketData, registry: Registry) -> np.datetime64:
    """The newest date every asset's own price series has reached (stress proxies may end earlier)."""
    names = {asset.price_series for asset in registry.assets if asset.price_series}
    return min(prices.get(name).dates[-1] for name in names)
