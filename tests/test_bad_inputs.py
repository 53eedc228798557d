"""Every bad input of the audit (issue 14) is a one-line error naming the option, variable, file, line or field:
exit code 2, nothing on stdout, no traceback, nothing written. One table of the command-line cases, and a
hypothesis fuzz of the CSV loaders (the colr.004 parser's fuzz is in tests/clearing/test_iso20022.py)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_cli import ROOT, tokenclear_env
from tokenclear.book.positions import load_positions
from tokenclear.errors import InputError
from tokenclear.instruments.catalogue import load_catalogue
from tokenclear.market.files import load_series

pytestmark = pytest.mark.integration

HEADER = (ROOT / "data" / "instruments.csv").read_text().splitlines()[0]
KEY_0 = "0x" + "00" * 32


def files(tmp_path: Path, instrument_row: str | None = None, close: tuple[str, str] | None = None,
          positions: str = "A,BTCZ23,1") -> list[str]:
    """Options pointing at a one-instrument catalogue, a one-row book and, with ``close``, a copy of the
    shipped prices with btc_usd's close on a date replaced."""
    args = []
    if instrument_row is not None:
        (tmp_path / "instruments.csv").write_text(f"{HEADER}\n{instrument_row}\n")
        args += ["--instruments", str(tmp_path / "instruments.csv")]
    (tmp_path / "positions.csv").write_text(f"account,instrument,quantity\n{positions}\n")
    args += ["--positions", str(tmp_path / "positions.csv")]
    if close is not None:
        folder = tmp_path / "market"
        shutil.copytree(ROOT / "data" / "market", folder)
        path = folder / "btc_usd.csv"
        day, value = close
        path.write_text("".join(f"{day},{value}\n" if line.startswith(day + ",") else line + "\n"
                                for line in path.read_text().splitlines()))
        args += ["--prices", str(folder)]
    return args


def blocked_out(tmp_path: Path) -> str:
    (tmp_path / "a-file").write_text("")
    return str(tmp_path / "a-file" / "out.json")


# (command line or a function of tmp_path giving it, environment, words of the error)
CASES = [
    (["margin", "--mpor-days", "0"], {}, "Invalid value for '--mpor-days': must be a number in [1, 250], not 0"),
    (["margin", "--mpor-days", "10000"], {}, "'--mpor-days': must be a number in [1, 250]"),
    (["margin", "--confidence", "1"], {}, "'--confidence': must be a number in [0.5, 1), not 1"),
    (["margin", "--confidence", "nan"], {}, "'--confidence': must be a number in [0.5, 1), not nan"),
    (["margin", "--lookback", "0"], {}, "'--lookback': must be a number in [1, inf), not 0"),
    (["margin", "--lookback", "-1"], {}, "'--lookback': must be a number in [1, inf), not -1"),
    (["margin", "--apc-release", "2"], {}, "'--apc-release': must be a number in [0, 1], not 2"),
    (["backtest", "--mpor-days", "0"], {}, "'--mpor-days'"),
    (["params", "span", "--coverage", "1.5"], {}, "'--coverage': must be a number in [0.5, 1), not 1.5"),
    (["params", "span", "--coverage", "0"], {}, "'--coverage': must be a number in [0.5, 1), not 0"),
    (["haircuts", "--position-usd", "inf"], {}, "'--position-usd': must be a number in [0, inf), not inf"),
    (["haircuts", "--position-usd", "nan"], {}, "'--position-usd': must be a number in [0, inf), not nan"),
    (["haircuts", "--mpor-days", "10000"], {}, "'--mpor-days': must be a number in [1, 20], not 10000"),
    (["haircuts", "--depeg-half-life", "0"], {}, "'--depeg-half-life': must be a number in (0, inf), not 0"),
    (["margin", "--method", "notional", "--confidence", "0.9"], {}, "--confidence: does not apply to --method "
                                                                       "notional"),
    (["margin", "--lookback", "5"], {}, "--lookback: must be >= min_scenarios (60), not 5"),
    (["margin", "--lookback", "80"], {}, "--lookback: 80 scenarios leave no loss beyond the 99.00% quantile: "
                                         "at least 100 are needed"),
    (["margin"], {"TOKENCLEAR_LOOKBACK": "70"}, "TOKENCLEAR_LOOKBACK: 70 scenarios leave no loss beyond"),
    (["margin"], {"TOKENCLEAR_EWMA_LAMBDA": "2"}, "TOKENCLEAR_EWMA_LAMBDA: Input should be less than 1, not '2'"),
    (["margin"], {"TOKENCLEAR_LOOKBACK": "abc"}, "TOKENCLEAR_LOOKBACK: Input should be a valid integer"),
    (["margin"], {"TOKENCLEAR_MPOR_DAYS": "0"}, "TOKENCLEAR_MPOR_DAYS: Input should be greater than or equal to 1"),
    (["margin"], {"TOKENCLEAR_CONFIDENCE": "nan"}, "TOKENCLEAR_CONFIDENCE: Input should be less than 1"),
    (["haircuts"], {"TOKENCLEAR_DATA_DIR": "/nowhere"}, "TOKENCLEAR_DATA_DIR: '/nowhere' is not a folder"),
    (["haircuts", "--as-of", "2099-01-01"], {}, "days before as-of 2099-01-01 (at most 7): its prices are stale"),
    (lambda p: ["margin", *files(p, "BIG,future,btc_usd,1e308,USD,2023-12-29,,,,,listed,CME,BTC",
                                 positions="A,BIG,1")], {},
     "instruments.csv line 2 field 'multiplier': multiplier 1E+308 must lie in [1E-9, 1E+9]"),
    (lambda p: ["margin", *files(p, "TINY,future,btc_usd,1e-400,USD,2023-12-29,,,,,listed,CME,BTC",
                                 positions="A,TINY,1")], {}, "field 'multiplier': multiplier 1E-400 must lie in"),
    (lambda p: ["margin", *files(p, "C0,option,btc_usd,1,USD,2023-12-29,0,call,,,listed,CME,BTC",
                                 positions="A,C0,1")], {}, "option 'C0': Black-76 needs a positive strike"),
    (lambda p: ["margin", *files(p, "CN,option,btc_usd,1,USD,2023-12-29,-5,call,,,listed,CME,BTC",
                                 positions="A,CN,1")], {}, "option 'CN': Black-76 needs a positive strike"),
    (lambda p: ["margin", "--as-of", "2023-03-10", *files(p, close=("2023-03-10", "1e308"))], {},
     "btc_usd.csv line"),
    (lambda p: ["margin", "--as-of", "2023-03-10", *files(p, close=("2023-03-10", "1e-300"))], {},
     "a series of relative moves needs closes > 0 (at least 1e-09"),
    (lambda p: ["vm", "--from", "2023-08-24", "--to", "2023-08-28",
                *files(p, "XQ23,future,btc_usd,5,USD,2023-08-25,,,,,listed,CME,BTC", positions="A,XQ23,1")], {},
     "'XQ23' expired on 2023-08-25: its variation margin ends at its final settlement"),
    (lambda p: ["params", "span", "--out", blocked_out(p)], {}, "out.json: cannot write"),
    (lambda p: ["haircuts", "--out", blocked_out(p)], {}, "out.json: cannot write"),
    (["ledger", "deploy", "--rpc-url", "http://127.0.0.1:9"], {"TOKENCLEAR_PRIVATE_KEY": "0xzz"},
     "TOKENCLEAR_PRIVATE_KEY: not a private key"),
    (["ledger", "deploy", "--rpc-url", "http://127.0.0.1:9"], {"TOKENCLEAR_PRIVATE_KEY": KEY_0},
     "TOKENCLEAR_PRIVATE_KEY: not a private key"),
    (["ledger", "deploy", "--rpc-url", "http://127.0.0.1:9"], {"TOKENCLEAR_PRIVATE_KEY": "0x" + "11" * 32},
     "no EVM node answers at http://127.0.0.1:9"),
]


@pytest.mark.parametrize("args, env, words", CASES, ids=lambda case: None)
def test_a_bad_input_is_one_error_naming_its_source(tmp_path, args, env, words):
    args = args(tmp_path) if callable(args) else args
    before = sorted(tmp_path.rglob("*"))
    done = tokenclear_env(args, env)
    text = " ".join(done.stderr.replace("│", " ").split())
    assert done.returncode == 2, (args, done.stderr)
    assert done.stdout == "" and "Traceback" not in done.stderr
    assert " ".join(words.split()) in text, text
    assert sorted(tmp_path.rglob("*")) == before  # nothing written


def test_span_scan_ranges_follow_the_confidence_asked_for():
    """--confidence used to be ignored by --method span; its scan ranges are now the moves' quantile at it."""
    def total(confidence: str) -> float:
        done = tokenclear_env(["margin", "--method", "span", "--confidence", confidence, "--format", "json"], {})
        assert done.returncode == 0, done.stderr
        return sum(float(row["margin"]) for row in json.loads(done.stdout)["rows"])

    assert total("0.9") < total("0.99") < total("0.999")


def test_a_data_folder_without_a_reference_file_says_which_default_applies(tmp_path):
    shutil.copytree(ROOT / "data", tmp_path / "data")
    (tmp_path / "data" / "margin_classes.csv").unlink()
    (tmp_path / "data" / "span_intercommodity.csv").unlink()
    done = tokenclear_env(["margin", "--method", "span", "--format", "csv"], {"TOKENCLEAR_DATA_DIR": str(tmp_path /
                                                                                                    "data")})
    assert done.returncode == 0, done.stderr
    assert "margin_classes.csv not found: the EMIR defaults apply" in done.stdout  # in every format's preamble
    assert "span_intercommodity.csv not found: no inter-commodity spread credit" in done.stdout


def test_credentials_in_a_node_url_are_never_shown():
    done = tokenclear_env(["ledger", "deploy", "--rpc-url", "http://ops:SECRETPW@127.0.0.1:9/?apikey=SECRETKEY"],
                          {"TOKENCLEAR_PRIVATE_KEY": "0x" + "11" * 32})
    assert done.returncode == 2 and "http://ops:***@127.0.0.1:9/?apikey=***" in done.stderr
    assert "SECRET" not in done.stderr + done.stdout


def test_the_private_key_is_never_shown():
    key = "0x" + "ab" * 31 + "zz"
    done = tokenclear_env(["ledger", "deploy", "--rpc-url", "http://127.0.0.1:9"], {"TOKENCLEAR_PRIVATE_KEY": key})
    assert done.returncode == 2 and "ab" * 31 not in done.stderr + done.stdout


# -- fuzz of the CSV loaders: a damaged file is read or refused with an InputError, never anything else --------

POSITIONS = "account,instrument,quantity\nA,BTCZ23,1\nB,ESZ23,-2\nC,BTCZ23,3\n"
CATALOGUE = (ROOT / "data" / "instruments.csv").read_text()[:2000].rsplit("\n", 1)[0] + "\n"
PRICES = "date,close\n2023-03-08,22000.5\n2023-03-09,20300\n2023-03-10,20100\n"
JUNK = st.one_of(st.text(max_size=12), st.sampled_from(
    [",", "\n", '"', "\x00", "\ufeff", "nan", "inf", "-0", "1e308", "1e-400", "2023-02-30", ",,,,", "\r\n"]))


def damaged(data, text: str) -> str:
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, min(len(text), start + 10)))
    return text[:start] + data.draw(JUNK) + text[end:]


@pytest.fixture(scope="module")
def shipped_catalogue():
    return load_catalogue(ROOT / "data" / "instruments.csv")


FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@FUZZ
@given(st.data())
def test_a_damaged_positions_file_is_read_or_refused(tmp_path, shipped_catalogue, data):
    path = tmp_path / "positions.csv"
    path.write_bytes(damaged(data, POSITIONS).encode("utf-8", "surrogatepass"))
    try:
        load_positions(path, shipped_catalogue)
    except InputError:
        pass


@FUZZ
@given(st.data())
def test_a_damaged_catalogue_is_read_or_refused(tmp_path, data):
    path = tmp_path / "instruments.csv"
    path.write_bytes(damaged(data, CATALOGUE).encode("utf-8", "surrogatepass"))
    try:
        load_catalogue(path)
    except InputError:
        pass


@FUZZ
@given(st.data(), st.booleans())
def test_a_damaged_price_file_is_read_or_refused(tmp_path, data, relative):
    path = tmp_path / "btc_usd.csv"
    path.write_bytes(damaged(data, PRICES).encode("utf-8", "surrogatepass"))
    try:
        series = load_series(path, relative=relative)
    except InputError:
        return
    assert (series.closes > 0).all() or not relative
