"""Typed settings: environment variables prefixed ``TOKENCLEAR_`` over embedded defaults."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from tokenclear.bounds import MAX_MPOR_DAYS, MIN_CONFIDENCE
from tokenclear.errors import InputError

#: The data folder shipped with the package checkout (market data, catalogue, demo book).
PROJECT_DATA = Path(__file__).resolve().parents[2] / "data"


class Settings(BaseSettings):
    """Every tunable of a run; CLI flags override these per call."""

    model_config = SettingsConfigDict(env_prefix="TOKENCLEAR_", extra="ignore")

    data_dir: Path = Field(default=PROJECT_DATA, description="folder with market/, volume/, catalogue files")
    margin_currency: str = "USD"
    risk_calendar: str = Field(default="XNYS", description="exchange_calendars name of the scenario grid")
    cash_calendar: str = Field(default="XNYS", description="calendar of the days on which cash moves")
    confidence: float | None = Field(default=None, ge=MIN_CONFIDENCE, lt=1.0,
                                     description="VaR confidence for every clearing class; unset = per class "
                                     "from margin_classes.csv (EMIR Art. 24: 99% listed, 99.5% OTC)")
    mpor_days: int | None = Field(default=None, ge=1, le=MAX_MPOR_DAYS,
                                  description="margin period of risk (days) for every class; unset = per class "
                                  "from margin_classes.csv (EMIR Art. 26: 2 listed, 5 OTC)")
    apc: str = Field(default="stressed-weight", description="anti-procyclicality option of every margin run: "
                     "buffer, floor10y, stressed-weight (EMIR RTS 153/2013 Art. 28(1)(b)) or none")
    apc_release: float = Field(default=0.0, ge=0.0, le=1.0, description="fraction of the APC buffer released in stress")
    holiday_addon: bool = Field(default=True, description="collect the holiday/weekend add-on")
    concentration_addon: bool = Field(default=True, description="large-position add-on against ADV")
    allow_defaults: bool = Field(default=False, description="price a series missing from underlyings.csv with "
                                 "stated defaults (relative moves, the risk calendar, no carry) and run a book "
                                 "without concentration.csv rows, each with a warning; unset = refuse")
    floor_grid_usd: Decimal = Field(default=Decimal(0), ge=0, allow_inf_nan=False,
                                    description="privacy mode: the on-chain release floor is the "
                                    "requirement rounded down to this grid; 0 = the requirement itself")
    confirmed_moves: str = Field(default="", description="SERIES:YYYY-MM-DD,... one-day moves beyond 4x (or 1/4) "
                                 "that are real and may be used; any other is refused as a bad price")
    lookback: int = Field(default=1250, ge=1, description="observations in the scenario window")
    min_scenarios: int = Field(default=60, ge=1, description="fewer scenarios than this and a run is refused")
    required_history: int = Field(default=250, ge=1, description="observations below which a short-history "
                                  "add-on applies (EMIR RTS 153/2013 Art. 25)")
    ewma_lambda: float = Field(default=0.94, gt=0.0, lt=1.0, description="EWMA decay of the filtered HS volatility")
    es_confidence: float = Field(default=0.975, ge=MIN_CONFIDENCE, lt=1.0)
    max_stale_days: int = Field(default=5, ge=0, description="business days a close may lag the as-of date")
    stress_window: int = Field(default=250, ge=20, description="observations of the most stressed window")
    stress_period: str = Field(default="2008-09-01:2009-03-31", description="START:END added to every margin "
                               "window (JSCC: 1,250 days plus a stress period; Lehman by default); 'none' = no "
                               "stress period")
    dask_scheduler: str | None = Field(default=None, description="Dask scheduler (tcp://host:8786) a margin run "
                                       "distributes its accounts over; unset = one process")
    rpc_url: str | None = Field(default=None, description="JSON-RPC node; unset = embedded in-process EVM")
    evm: Literal["revm", "py-evm"] = Field(default="revm", description="the embedded EVM when rpc_url is unset: "
                                           "revm (native, through pyrevm) or py-evm (titanoboa, interpreted, about "
                                           "10x slower on a margin cycle; gas metered exactly per transaction)")
    private_key: SecretStr | None = Field(default=None, description="signing key for --rpc-url (never logged)")
    admin_key: SecretStr | None = Field(default=None, description="key that deploys and grants roles (default: "
                                        "private_key); each role key below defaults to private_key, with a warning")
    parameter_key: SecretStr | None = Field(default=None, description="key of the PARAMETER role: prices, haircuts")
    default_manager_key: SecretStr | None = Field(default=None, description="key that declares defaults and seizes")
    token_agent_key: SecretStr | None = Field(default=None, description="key that mints, freezes and sets NAVs")
    keystore: Path | None = Field(default=None, description="encrypted keystore file, instead of private_key")
    keystore_password: SecretStr | None = None
    database_url: str | None = Field(default=None, description="SQLAlchemy URL of the book; unset = a new "
                                     "SQLite file under work_dir")
    work_dir: Path = Field(default=Path("tokenclear-data"), description="where embedded databases are written")
    token_algorithm: str = Field(default="ES256", description="signature of the service's access tokens: HS256, "
                                 "ES256 or EdDSA (its key made on first use in work_dir)")
    token_ttl_s: int = Field(default=900, ge=30, le=86_400, description="lifetime of an access token (seconds)")
    intraday_threshold: float = Field(default=0.05, gt=0.0, lt=1.0, description="guarded price move since the last "
                                      "cycle (fraction) past which the service revalues intraday")

    @property
    def confirmed(self) -> frozenset[tuple[str, str]]:
        """``confirmed_moves`` as (series, ISO date) pairs."""
        out = set()
        for item in filter(None, (part.strip() for part in self.confirmed_moves.split(","))):
            series, _, day = item.partition(":")
            if not series or len(day) != 10:
                raise InputError(f"'{item}' is not SERIES:YYYY-MM-DD", field="TOKENCLEAR_CONFIRMED_MOVES")
            out.add((series, day))
        return frozenset(out)

    @property
    def prices_dir(self) -> Path:
        return self.data_dir / "market"

    @property
    def volumes_dir(self) -> Path:
        return self.data_dir / "volume"

    @property
    def instruments_file(self) -> Path:
        return self.data_dir / "instruments.csv"

    @property
    def underlyings_file(self) -> Path:
        return self.data_dir / "underlyings.csv"

    @property
    def margin_classes_file(self) -> Path:
        return self.data_dir / "margin_classes.csv"

    @property
    def concentration_file(self) -> Path:
        return self.data_dir / "concentration.csv"

    @property
    def intercommodity_file(self) -> Path:
        return self.data_dir / "span_intercommodity.csv"

    @property
    def collateral_dir(self) -> Path:
        return self.data_dir / "collateral"

    @property
    def demo_positions_file(self) -> Path:
        return self.data_dir / "demo" / "positions.csv"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings from the environment; a value out of range is an :class:`InputError` naming its variable."""
    from pydantic import ValidationError

    try:
        settings = Settings()
    except ValidationError as error:
        first = error.errors()[0]
        name = "TOKENCLEAR_" + str(first["loc"][0]).upper() if first["loc"] else "TOKENCLEAR_*"
        raise InputError(f"{first['msg']}, not {first.get('input')!r}", field=name) from None
    if not settings.data_dir.is_dir():
        raise InputError(f"'{settings.data_dir}' is not a folder", field="TOKENCLEAR_DATA_DIR")
    return settings
