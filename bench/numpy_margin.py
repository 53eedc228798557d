"""The independent yardstick of ``bench_ingest.py``: HS-VaR of a generated book (``big_book.py``) in a plain
script, no tokenclear: read the files with pyarrow, stack the closes, take the overlapping 2-day relative moves
of the last 1,250 sessions, revalue each future linearly (multiplier x close x move), one matrix product, the
99% quantile of each account's loss, rounded up to the cent, written as JSON.

The run it matches: ``tokenclear margin --stress-period none --apc none --no-holiday-addon
--no-concentration-addon`` on futures with no carry and no term decay (so the futures price is the close).
Run: ``python bench/numpy_margin.py DATA POSITIONS OUT``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

LOOKBACK, MPOR, CONFIDENCE = 1250, 2, 0.99


def main(data: Path, positions: Path, out: Path) -> None:
    instruments = pcsv.read_csv(data / "instruments.csv")  # one future per underlying
    names = instruments.column("instrument").to_pylist()
    multiplier = instruments.column("multiplier").to_numpy().astype(np.float64)
    closes = np.column_stack([pcsv.read_csv(data / "market" / f"{underlying}.csv").column("close").to_numpy()
                              for underlying in instruments.column("underlying").to_pylist()])
    moves = closes[MPOR:] / closes[:-MPOR] - 1.0
    pnl = (multiplier * closes[-1])[:, None] * moves[-LOOKBACK:].T  # [instruments, scenarios]
    table = pcsv.read_csv(positions)
    accounts, row = np.unique(table.column("account").to_numpy(zero_copy_only=False), return_inverse=True)
    column = pc.index_in(table.column("instrument"), value_set=pa.array(names)).to_numpy()
    quantity = np.zeros((accounts.size, len(names)))
    np.add.at(quantity, (row, column), table.column("quantity").to_numpy())
    margin = np.maximum(np.quantile(-(quantity @ pnl), CONFIDENCE, axis=1), 0.0)
    cents = np.ceil(margin * 100 - 1e-6).astype(np.int64)  # a requirement rounds up to the cent
    out.write_text(json.dumps([{"account": name, "margin": f"{value / 100:.2f}"}
                               for name, value in zip(accounts.tolist(), cents.tolist(), strict=True)]))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
