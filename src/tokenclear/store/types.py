"""Exact column types. PostgreSQL has a true ``NUMERIC``; SQLite stores a non-integer or a value
beyond 64 bits of ``NUMERIC`` affinity as a float, so there the same values are kept as decimal text
(and summed in Python, never by SQL)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Numeric, String
from sqlalchemy.types import TypeDecorator


class ExactDecimal(TypeDecorator):
    """A ``Decimal`` with ``scale`` places: ``NUMERIC(precision, scale)``, or text on SQLite."""

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int, scale: int) -> None:
        super().__init__(precision, scale)
        self.precision, self.scale = precision, scale

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(self.precision + 2))
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        number = Decimal(value)
        quantum = Decimal(1).scaleb(-self.scale)
        if number != number.quantize(quantum):
            raise ValueError(f"{value} has more than {self.scale} decimal places")
        number = number.quantize(quantum)
        return str(number) if dialect.name == "sqlite" else number

    def process_result_value(self, value, dialect):
        return None if value is None else Decimal(value)
