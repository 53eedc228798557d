"""Bad input fails before anything is computed, naming the file, line and field."""

from pathlib import Path

import numpy as np
import pytest

from tokenclear.book.positions import load_positions
from tokenclear.errors import InputError, MarketDataError
from tokenclear.instruments.catalogue import load_catalogue
from tokenclear.market.files import load_series
from tokenclear.settings import PROJECT_DATA


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue(PROJECT_DATA / "instruments.csv")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "line", "field", "words"), [
    ("account,instrument,quantity\nA,BTCZ23,1\nA,BTCZ5,2\n", 3, "instrument", "unknown instrument 'BTCZ5'"),
    ("account,instrument,quantity\nA,BTCZ23,ten\n", 2, "quantity", "'ten' is not a number"),
    ("account,instrument,quantity\nA,BTCZ23,1.5\n", 2, "quantity", "not a whole number"),
    ("account,instrument,quantity\nA,BTCZ23,1\nB,ESZ23,1\nA,BTCZ23,3\n", 4, "instrument", "duplicate row"),
    ("account,instrument\nA,BTCZ23\n", 1, "quantity", "missing column"),
    ("account,instrument,quantity\n,BTCZ23,1\n", 2, "account", "blank"),
    ("account,instrument,quantity\nA,BTCZ23,nan\n", 2, "quantity", "not a finite number"),
])
def test_bad_positions_name_file_line_and_field(tmp_path, catalogue, text, line, field, words):
    path = write(tmp_path, "positions.csv", text)
    with pytest.raises(InputError) as caught:
        load_positions(path, catalogue)
    message = str(caught.value)
    assert caught.value.line == line and caught.value.field == field
    assert str(path) in message and f"line {line}" in message and field in message and words in message


@pytest.mark.parametrize("text", ["", "account,instrument,quantity\n"])
def test_empty_positions_file(tmp_path, catalogue, text):
    with pytest.raises(InputError, match="empty|no data rows"):
        load_positions(write(tmp_path, "p.csv", text), catalogue)


def test_missing_file(tmp_path, catalogue):
    with pytest.raises(InputError, match="file not found"):
        load_positions(tmp_path / "nope.csv", catalogue)


@pytest.mark.parametrize(("row", "field"), [
    ("X,swap,btc_usd,1,USD,2024-01-01,,,", "kind"),
    ("X,future,btc_usd,0,USD,2024-01-01,,,", "multiplier"),
    ("X,future,btc_usd,1,USD,,,,", "expiry"),
    ("X,future,btc_usd,1,USD,2024-13-01,,,", "expiry"),
    ("X,perpetual,btc_usd,1,USD,2024-01-01,,,", "expiry"),
    ("X,option,btc_usd,1,USD,2024-01-01,100,straddle,", "option_type"),
    ("X,option,btc_usd,1,USD,2024-01-01,abc,call,", "strike"),
    ("X,future,btc_usd,1,US,2024-01-01,,,", "currency"),
])
def test_bad_catalogue_rows(tmp_path, row, field):
    header = "instrument,kind,underlying,multiplier,currency,expiry,strike,option_type,volatility\n"
    with pytest.raises(InputError) as caught:
        load_catalogue(write(tmp_path, "i.csv", header + row + "\n"))
    assert caught.value.line == 2 and caught.value.field == field


def test_price_file_errors(tmp_path):
    with pytest.raises(InputError, match="line 3 field 'date'.*not after"):
        load_series(write(tmp_path, "x.csv", "date,close\n2020-01-02,1\n2020-01-01,2\n"))
    with pytest.raises(InputError, match="line 2 field 'close'"):
        load_series(write(tmp_path, "x.csv", "date,close\n2020-01-02,abc\n"))


def test_negative_prices_load(tmp_path):
    one = load_series(write(tmp_path, "wti.csv", "date,close\n2020-04-17,18.27\n2020-04-20,-37.63\n"))
    assert one.closes[-1] == -37.63 and one.dates[-1] == np.datetime64("2020-04-20")


def test_as_of_after_the_data_is_an_error():
    from tests.conftest import context_of, future

    with pytest.raises(MarketDataError, match="after the last close"):
        context_of({"x": np.linspace(100, 110, 300)}, [future("X", "x")], [("a", "X", 1)],
                   as_of=np.datetime64("2021-06-01"))
