"""Bad data gets an error, never a margin (issue 14): closes of relative series must be > 0, a one-day move
beyond 4x is refused as a bad price unless confirmed as real, absolute series may go negative; an unreadable
CSV is a one-line error."""

from __future__ import annotations

import shutil

import pytest

from tests.test_cli import ROOT, tokenclear, tokenclear_env
from tokenclear.errors import InputError
from tokenclear.market.files import load_series

pytestmark = pytest.mark.integration


def edited(tmp_path, series: str, day: str, value) -> str:
    """A copy of the shipped prices with ``series`` closing at ``value`` on ``day`` (a callable: of the close)."""
    folder = tmp_path / "market"
    shutil.copytree(ROOT / "data" / "market", folder)
    path = folder / f"{series}.csv"
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith(day + ","):
            close = float(line.split(",")[1])
            lines[i] = f"{day},{value(close) if callable(value) else value}"
            break
    else:
        raise AssertionError(f"{day} not in {path}")
    path.write_text("\n".join(lines) + "\n")
    return str(folder)


@pytest.mark.parametrize("day, value, message", [
    ("2023-03-10", 0, "close 0 on 2023-03-10: a series of relative moves needs closes > 0"),
    ("2023-03-10", -22000, "needs closes > 0"),
    ("2023-03-08", lambda close: close * 1000, "x the previous close 22219.8: refused as a bad price"),
    ("2023-03-10", lambda close: close / 10, "refused as a bad price (a one-day move beyond 4x)"),
])
@pytest.mark.parametrize("command", [["margin", "--as-of", "2023-03-10"],
                                     ["vm", "--from", "2023-03-09", "--to", "2023-03-10"]])
def test_a_bad_close_is_refused_naming_file_line_and_field(tmp_path, day, value, message, command):
    prices = edited(tmp_path, "btc_usd", day, value)
    done = tokenclear(*command, "--prices", prices, "--format", "json")
    text = " ".join(done.stderr.split())
    assert done.returncode == 2 and done.stdout == ""
    assert message in text and "btc_usd.csv line" in text and "field 'close'" in text


def test_a_real_jump_runs_once_confirmed(tmp_path):
    prices = edited(tmp_path, "btc_usd", "2023-03-10", lambda close: close / 10)
    refused = tokenclear("margin", "--as-of", "2023-03-10", "--prices", prices)
    assert refused.returncode == 2 and "TOKENCLEAR_CONFIRMED_MOVES=btc_usd:2023-03-10" in refused.stderr
    done = tokenclear_env(["margin", "--as-of", "2023-03-10", "--prices", prices, "--format", "csv"],
                          {"TOKENCLEAR_CONFIRMED_MOVES": "btc_usd:2023-03-10, btc_usd:2023-03-11"})
    assert done.returncode == 0, done.stderr
    bad = tokenclear_env(["margin", "--prices", prices], {"TOKENCLEAR_CONFIRMED_MOVES": "btc_usd"})
    assert bad.returncode == 2 and "TOKENCLEAR_CONFIRMED_MOVES: 'btc_usd' is not SERIES:YYYY-MM-DD" in bad.stderr


def test_an_absolute_series_may_close_below_zero(tmp_path):
    """Oil closed at -37.63 USD on 2020-04-20: a series of absolute moves keeps negative closes."""
    prices = edited(tmp_path, "wti_1986_2019", "2018-12-21", -37.63)
    done = tokenclear("margin", "--positions", str(ROOT / "data" / "demo" / "positions_wti.csv"), "--prices",
                      prices, "--format", "csv")
    assert done.returncode == 0, done.stderr


def test_the_shipped_series_pass():
    """Every shipped series passes its checks: relative ones > 0 with no unconfirmed 4x day; the absolute ones
    (oil, which went below zero in 2020) are those underlyings.csv declares absolute."""
    from tokenclear.instruments.underlyings import load_underlyings

    absolute = {name for name, spec in load_underlyings(ROOT / "data" / "underlyings.csv").items()
                if spec.returns == "absolute"}
    assert absolute == {"wti_1986_2019", "wti_spot_eia", "brent_spot_eia"}
    for path in sorted((ROOT / "data" / "market").glob("*.csv")):
        series = load_series(path, relative=path.stem not in absolute)
        assert path.stem in absolute or series.closes.min() > 0
    assert load_series(ROOT / "data" / "market" / "wti_spot_eia.csv").closes.min() == -36.98


def test_the_first_offending_row_is_named(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("date,close\n2024-01-01,10\n2024-01-02,11\n2024-01-03,0\n2024-01-04,-1\n")
    with pytest.raises(InputError, match="line 4 field 'close'"):
        load_series(path, relative=True)
    assert load_series(path).closes[-1] == -1  # unchecked without relative moves


@pytest.mark.parametrize("content, message", [
    (b"account,instrument,quantity\nA\xe9,BTCZ23,1\n", "not UTF-8 text: byte 0xe9"),
    (b"account,instrument,quantity\nA,BTCZ23," + b"1" * 140_000 + b"\n",
     "line 2 field 'quantity': '1111111111111111111111111111...(140,000 characters)' is too large"),
])
def test_an_unreadable_csv_is_one_line_error(tmp_path, content, message):
    path = tmp_path / "positions.csv"
    path.write_bytes(content)
    done = tokenclear("margin", "--positions", str(path))
    assert done.returncode == 2 and "Traceback" not in done.stderr and message in done.stderr
    assert len(done.stderr) < 400  # a huge value is quoted short
