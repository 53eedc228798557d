"""The ``tokenclear`` command line's common parts: the Typer apps, the consoles (tables on stdout, progress,
warnings and errors on stderr), shared options and helpers. Each command group lives in its own module."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console

from tokenclear.bounds import MAX_MPOR_DAYS, MIN_CONFIDENCE
from tokenclear.errors import InputError, TokenclearError

if TYPE_CHECKING:
    from tokenclear.settings import Settings

app = typer.Typer(help="tokenclear: margin and tokenized collateral for derivatives clearing.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
params_app = typer.Typer(help="Write the parameter files a method would apply.", no_args_is_help=True)
app.add_typer(params_app, name="params")
ledger_app = typer.Typer(help="The EVM ledger: build the contracts, deploy the clearing system.",
                         no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")
book_app = typer.Typer(help="The clearing book: members, accounts and positions.", no_args_is_help=True)
app.add_typer(book_app, name="book")



def _version(value: bool) -> None:
    if value:
        from tokenclear import __version__

        sys.stdout.write(f"tokenclear {__version__}\n")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="print the version and exit")] = False) -> None:
    """tokenclear: margin and tokenized collateral for derivatives clearing."""


stdout = Console(width=None if sys.stdout.isatty() else 160)  # a pipe gets the wide table unwrapped
stderr = Console(stderr=True, soft_wrap=True)  # an error naming a file stays on one line
T = TypeVar("T")


class Method(str, Enum):
    hsvar = "hsvar"
    fhs = "fhs"
    span = "span"
    asvar = "asvar"
    notional = "notional"


class Measure(str, Enum):
    quantile = "quantile"
    kth = "kth"
    es = "es"


class Apc(str, Enum):
    none = "none"
    buffer = "buffer"
    floor10y = "floor10y"
    stressed_weight = "stressed-weight"


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


class BookFormat(str, Enum):
    """The formats of a command whose rows grow with the book: Parquet as well (needs ``--out``)."""

    table = "table"
    json = "json"
    csv = "csv"
    parquet = "parquet"


def within(low: float, high: float | None = None, *, high_open: bool = False, low_open: bool = False):
    """An option callback: a finite number in the stated interval, else a usage error naming the option."""
    import math

    def check(value: float | None) -> float | None:
        if value is None:
            return value
        ok = math.isfinite(value) and (value > low if low_open else value >= low) and (
            high is None or (value < high if high_open else value <= high))
        if not ok:
            interval = ("(" if low_open else "[") + f"{low:g}, " + ("inf)" if high is None else
                                                                      f"{high:g}" + (")" if high_open else "]"))
            raise typer.BadParameter(f"must be a number in {interval}, not {value:g}")
        return value

    return check


#: A confidence level (VaR, haircut, scan range) and a margin period of risk, business days.
confidence_range = within(MIN_CONFIDENCE, 1.0, high_open=True)
mpor_range = within(1, MAX_MPOR_DAYS)

PositionsOpt = Annotated[Path | None, typer.Option("--positions", "-p", help="CSV account,instrument,quantity, or "
                                                   "exchange,contract,expiry,put_call,strike and long,short "
                                                   "(default: the shipped demo book)")]
InstrumentsOpt = Annotated[Path | None, typer.Option("--instruments", help="instrument catalogue CSV")]
PricesOpt = Annotated[Path | None, typer.Option("--prices", help="folder of date,close CSV files")]
AsOfOpt = Annotated[str | None, typer.Option("--as-of", help="YYYY-MM-DD (default: last common date)")]
ConfidenceOpt = Annotated[float | None, typer.Option(callback=confidence_range,
                                                   help="confidence level of the VaR (default: TOKENCLEAR_CONFIDENCE"
                                                   ", else the listed class's, 99%)")]
MporOpt = Annotated[int | None, typer.Option("--mpor-days", callback=mpor_range,
                                             help="margin period of risk, business days (default: "
                                             "TOKENCLEAR_MPOR_DAYS, else the listed class's, 2)")]
LookbackOpt = Annotated[int | None, typer.Option(callback=within(1), help="observations in the scenario window "
                                                 "(default: TOKENCLEAR_LOOKBACK, 1250)")]
AllowDefaultsOpt = Annotated[bool | None, typer.Option(
    "--allow-defaults/--refuse-defaults", help="price a series missing from underlyings.csv (and run without "
    "concentration.csv rows) on stated defaults, with a warning (default: TOKENCLEAR_ALLOW_DEFAULTS, refuse)")]
SumDuplicatesOpt = Annotated[bool, typer.Option("--sum-duplicates", help="add up rows for the same account and "
                                                "contract, with a warning (default: refuse them)")]
WideOpt = Annotated[bool, typer.Option("--wide", help="every column in the table (default: fits 80 columns)")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="write the JSON here (default: stdout)")]


def progress_bar(description: str = "{task.description}"):
    """A progress bar on stderr: the stage, a bar, done of total, elapsed time and an ETA (rich imported here:
    `tokenclear --help` does not pay for it)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class Rate(ProgressColumn):
        """Items a second, once rich has measured it."""

        def render(self, task) -> Text:
            return Text("" if task.speed is None else f"{task.speed:,.1f}/s")

    return Progress(TextColumn(description), BarColumn(), MofNCompleteColumn(), Rate(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=stderr, transient=True)


@contextmanager
def stages(total: int) -> Iterator[Callable[[str, Callable[[], T]], T]]:
    """A progress bar over named stages, on stderr."""
    with progress_bar() as progress:
        task = progress.add_task("starting", total=total)

        def step(name: str, work: Callable[[], T]) -> T:
            progress.update(task, description=name)
            result = work()
            progress.advance(task)
            return result

        yield step


def get_settings() -> Settings:
    """The settings (pydantic is imported on first use: `tokenclear --help` does not pay for it)."""
    from tokenclear.settings import get_settings as cached

    try:
        return cached()
    except TokenclearError as error:  # an environment variable out of range: one line naming it
        raise fail(error) from None


def fail(error: TokenclearError) -> typer.Exit:
    stderr.print(f"[bold red]error:[/] {error}")
    return typer.Exit(code=2)


def load_context(settings: Settings, *, positions: Path | None, instruments: Path | None, prices: Path | None,
                 as_of: str | None, mpor_days: int | None, lookback: int | None, confidence: float | None = None,
                 measure: Measure = Measure.quantile, stress_period: str | None = None,
                 allow_defaults: bool | None = None, sum_duplicates: bool = False):
    """The run's inputs and scenario context from the command's options over the settings (every
    one-class command starts here)."""
    from tokenclear import runner

    config = runner.risk_setup(settings, stress_period=stress_period, confidence=confidence, mpor_days=mpor_days,
                               lookback=lookback, measure=measure.value).config
    return runner.load_context(settings, config, positions=positions, instruments=instruments, prices=prices,
                               as_of=as_of, allow_defaults=allow_defaults, sum_duplicates=sum_duplicates)


RpcUrlOpt = Annotated[str | None, typer.Option("--rpc-url", help="JSON-RPC node (default: embedded EVM; "
                                               "env TOKENCLEAR_RPC_URL)")]


def write_text(text: str, out: Path | None) -> None:
    write_bytes(text.encode("utf-8"), out)


def write_bytes(data: bytes, out: Path | None) -> None:
    """``data`` and a newline (UTF-8 text) to stdout, or to the file ``out`` with a note on stderr."""
    if out is None:
        binary = getattr(sys.stdout, "buffer", None)
        if binary is None:  # a text-only stream (a test's StringIO)
            sys.stdout.write(data.decode("utf-8") + "\n")
        else:
            sys.stdout.flush()
            binary.write(data + b"\n")
            binary.flush()
    else:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data + b"\n")
        except OSError as error:
            raise fail(InputError(f"cannot write ({error.strerror}: {error.filename})", path=out)) from None
        stderr.print(f"wrote {out}")


def csv_text(rows: list[dict[str, object]]) -> str:
    """Rows as a plain CSV with a header (the first row's keys), no preamble: the haircut file `--compare`
    reads back. Command output goes through :mod:`tokenclear.cli.output` instead."""
    import csv
    import io

    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()
