"""Generate a large margin book as a user's files: a data folder (instruments, underlyings, margin classes, one
``date,close`` CSV per series) and a positions file, CSV or Parquet.

Default: 10,000 accounts holding 20 of 500 futures each (200,000 position rows), 500 price series of about
1,400 XNYS sessions (2018-01-02 to 2023-08-31): the book issue 17 measured. Run as a script to write one:
``python bench/big_book.py OUT [--accounts N] [--parquet]``.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

SHIPPED = Path(__file__).resolve().parents[1] / "data"
START, END = "2018-01-02", "2023-08-31"


def sessions(start: str = START, end: str = END) -> np.ndarray:
    """XNYS sessions between two dates (weekdays less the exchange's holidays), as datetime64[D]."""
    import exchange_calendars as xcals

    return xcals.get_calendar("XNYS").sessions_in_range(start, end).values.astype("datetime64[D]")


def write_data(folder: Path, *, series: int = 500, seed: int = 17) -> list[str]:
    """The data folder (``TOKENCLEAR_DATA_DIR``): ``series`` underlyings with one quarterly future each; returns
    the instruments' names."""
    rng = np.random.default_rng(seed)
    market = folder / "market"
    market.mkdir(parents=True, exist_ok=True)
    days = sessions()
    text_days = np.datetime_as_string(days)
    names = [f"u{j:03d}" for j in range(series)]
    vols = rng.uniform(0.005, 0.03, series)
    paths = 100 * np.exp(np.cumsum(rng.standard_normal((series, days.size)) * vols[:, None], axis=1))
    for name, closes in zip(names, paths, strict=True):
        body = "\n".join(f"{day},{close:.6f}" for day, close in zip(text_days, closes.tolist(), strict=True))
        (market / f"{name}.csv").write_text(f"date,close\n{body}\n")
    header = "instrument,kind,underlying,multiplier,currency,expiry,strike,option_type,volatility,premium_style," \
             "clearing_class,exchange,product_code"
    instruments = [f"{name}Z23" for name in names]
    rows = [f"{name}Z23,future,{name},10,USD,2023-12-15,,,,,listed,XBEN,{name.upper()}" for name in names]
    (folder / "instruments.csv").write_text("\n".join([header, *rows]) + "\n")
    rows = [f"{name},XNYS,relative,0,0,black76,,,,,," for name in names]
    (folder / "underlyings.csv").write_text("underlying,calendar,returns,carry_rate,term_decay,option_model,"
                                            "notional_rate,span_extreme_multiple,span_extreme_fraction,"
                                            "span_lookahead_days,stress_proxy,stress_beta\n" + "\n".join(rows) + "\n")
    shutil.copy(SHIPPED / "margin_classes.csv", folder / "margin_classes.csv")
    return instruments


def positions(instruments: list[str], *, accounts: int = 10_000, per_account: int = 20, seed: int = 18,
              start: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(account names, instrument names, quantities) of ``accounts`` accounts from number ``start``, each
    holding ``per_account`` distinct instruments (quantities in [-50, 50] without 0)."""
    rng = np.random.default_rng(seed + start)
    held = np.argsort(rng.random((accounts, len(instruments))), axis=1)[:, :per_account]
    size = rng.integers(1, 51, held.shape) * rng.choice([-1, 1], held.shape)
    names = np.char.add("A", np.char.zfill(np.arange(start, start + accounts).astype(str), 8))
    return (np.repeat(names, per_account), np.asarray(instruments)[held.ravel()], size.ravel())


def write_positions(path: Path, instruments: list[str], **kwargs) -> int:
    """Write the positions (CSV or, for ``.parquet``, Parquet); returns the number of rows."""
    import pyarrow as pa

    account, instrument, quantity = positions(instruments, **kwargs)
    table = pa.table({"account": account, "instrument": instrument, "quantity": quantity})
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    else:
        import pyarrow.csv as pcsv

        pcsv.write_csv(table, path, pcsv.WriteOptions(quoting_style="none"))
    return table.num_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--parquet", action="store_true")
    args = parser.parse_args()
    instruments = write_data(args.out)
    rows = write_positions(args.out / ("positions.parquet" if args.parquet else "positions.csv"), instruments,
                           accounts=args.accounts)
    print(f"{args.out}: {len(instruments)} series, {rows:,} position rows")


if __name__ == "__main__":
    main()
