"""One exception hierarchy. Messages name the file, line and field a user must fix."""

from __future__ import annotations

from pathlib import Path


class TokenclearError(Exception):
    """Base of every error tokenclear raises on purpose."""


class InputError(TokenclearError):
    """A user-supplied file or value is malformed. Raised before anything is computed."""

    def __init__(self, message: str, *, path: Path | str | None = None, line: int | None = None,
                 field: str | None = None, row: int | None = None) -> None:
        """``line``: of a text file (its header is line 1); ``row``: of a Parquet file (its first row is 1)."""
        self.message = message
        self.path = None if path is None else str(path)
        self.line = line
        self.row = row
        self.field = field
        where = ""
        if self.path is not None:
            where = self.path
            if line is not None:
                where += f" line {line}"
            if row is not None:
                where += f" row {row}"
            if field is not None:
                where += f" field '{field}'"
            where += ": "
        elif field is not None:
            where = f"{field}: "
        super().__init__(where + message)


class MarketDataError(TokenclearError):
    """Price history is missing, stale or too short for the requested computation."""


class ConfigurationError(TokenclearError):
    """A parameter combination cannot be honoured (e.g. an unknown method)."""


class LedgerError(TokenclearError):
    """The chain refused or could not carry out an instruction."""


class TransactionReverted(LedgerError):
    """A transaction or call reverted; ``reason`` is the contract's revert string, if any."""

    def __init__(self, reason: str, *, function: str | None = None) -> None:
        self.reason = reason
        self.function = function
        super().__init__(f"{function}: reverted: {reason}" if function else f"reverted: {reason}")


class ChainUnavailable(LedgerError):
    """The JSON-RPC node cannot be reached or answered out of protocol."""
