"""PNG chart of a backtest: margin against realised MPOR loss, exceptions marked."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from tokenclear.margin.backtest import Backtest


def write_chart(result: Backtest, path: Path, *, title: str) -> Path:
    dates = result.dates.astype("datetime64[D]").astype(object)
    figure, axes = plt.subplots(figsize=(11, 4.5), dpi=110)
    axes.plot(dates, result.margin, color="#1f4e79", linewidth=1.2, label="initial margin")
    axes.plot(dates, result.realised_loss, color="#9a9a9a", linewidth=0.6, label="realised MPOR loss")
    hit = result.exceptions
    axes.scatter(dates[hit] if hit.any() else [], result.realised_loss[hit], color="#c00000", s=14, zorder=3,
                 label=f"exceptions ({result.exception_count})")
    axes.axhline(0, color="black", linewidth=0.5)
    axes.set_title(f"{title}: {result.exception_count} exceptions in {hit.size} days "
                   f"({result.exception_rate:.2%} vs {1 - result.confidence:.0%}), traffic light "
                   f"{result.traffic_light}, verdict {result.verdict}")
    axes.set_ylabel("USD (loss > 0)")
    axes.legend(loc="upper left", fontsize=8)
    figure.autofmt_xdate()
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
