"""The dashboard's charts as inline SVG, drawn on the server with matplotlib (no script, no network): each
chart's axis says its unit."""

from __future__ import annotations

import io
from datetime import datetime

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

COLOURS = ("#1f5fa8", "#d8772b", "#3c9a5f", "#b3443c", "#7b5aa6", "#6b6b6b")


def _svg(figure) -> str:
    out = io.StringIO()
    figure.savefig(out, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = out.getvalue()
    return text[text.index("<svg"):]


def lines(series: dict[str, tuple[list[datetime], list[float]]], *, unit: str, title: str,
          right: dict[str, tuple[list[datetime], list[float]]] | None = None, right_unit: str = "") -> str:
    """Lines through time (``series``: label -> (times, values)), a second axis for ``right``."""
    figure, axis = plt.subplots(figsize=(8.0, 2.8), dpi=96)
    for colour, (label, (times, values)) in zip(COLOURS, series.items(), strict=False):
        axis.plot(times, values, label=label, color=colour, marker="o", markersize=3, linewidth=1.6)
    axis.set_ylabel(unit)
    axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}" if abs(value) >= 100
                                                 else f"{value:,.4g}"))
    axis.set_title(title, fontsize=10, loc="left")
    axis.grid(alpha=0.3)
    handles, labels = axis.get_legend_handles_labels()
    if right:
        other = axis.twinx()
        for colour, (label, (times, values)) in zip(COLOURS[len(series):], right.items(), strict=False):
            other.plot(times, values, label=label, color=colour, linestyle="--", marker="s", markersize=3)
        other.set_ylabel(right_unit)
        more_handles, more_labels = other.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    axis.legend(handles, labels, fontsize=8, loc="best")
    axis.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M"))
    figure.autofmt_xdate()
    return _svg(figure)


def bars(labels: list[str], values: list[float], *, unit: str, title: str) -> str:
    figure, axis = plt.subplots(figsize=(8.0, 2.6), dpi=96)
    axis.bar(labels, values, color=COLOURS[0])
    axis.set_ylabel(unit)
    axis.set_title(title, fontsize=10, loc="left")
    axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    axis.grid(alpha=0.3, axis="y")
    plt.setp(axis.get_xticklabels(), rotation=45, ha="right", fontsize=7)
    return _svg(figure)
