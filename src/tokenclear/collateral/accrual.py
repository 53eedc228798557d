"""Yield accrual of tokenized funds and bills (exact, ``Decimal``; pure).

* price-accruing fund share: the NAV per share compounds daily, the balance stays;
* rebasing (dividend-in-units) fund share: the NAV stays at 1.00, the balance grows by the same
  daily factor (rounded down to the token's base unit);
* tokenized bill: price by the bank-discount formula ``face x (1 - d x days_to_maturity / 360)``,
  which rises linearly to par at maturity (the bill token contract accretes the same way).

Either way the collateral value (balance x price) rises with the yield: the seeds' "interest shows
up as a rising collateral value".
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal, localcontext

NAV_QUANTUM = Decimal("0.00000001")  # 8 decimals, as prices are held on chain (price_e8)
DAYS_PER_YEAR = 365
BILL_BASIS = 360


def _daily_factor(annual_yield: Decimal, days: int) -> Decimal:
    if days < 0:
        raise ValueError("days must not be negative")
    with localcontext() as context:
        context.prec = 40
        return (Decimal(1) + Decimal(annual_yield) / DAYS_PER_YEAR) ** days


def accrued_nav(nav: Decimal, annual_yield: Decimal, days: int) -> Decimal:
    """NAV per share after ``days`` of daily compounding at ``annual_yield`` (simple annual rate,
    act/365), rounded down to 8 decimals."""
    return (Decimal(nav) * _daily_factor(annual_yield, days)).quantize(NAV_QUANTUM, rounding=ROUND_DOWN)


def rebased_units(units: int, annual_yield: Decimal, days: int) -> int:
    """Balance in base units after ``days`` of daily dividends paid as new units, rounded down."""
    with localcontext() as context:
        context.prec = 60
        return int((Decimal(units) * _daily_factor(annual_yield, days)).to_integral_value(rounding=ROUND_DOWN))


def bill_price(face: Decimal, discount_rate: Decimal, days_to_maturity: int) -> Decimal:
    """Price of a discount bill (bank discount, act/360), 8 decimals rounded down; par at maturity."""
    if days_to_maturity < 0:
        raise ValueError("the bill has matured")
    price = Decimal(face) * (1 - Decimal(discount_rate) * days_to_maturity / BILL_BASIS)
    return price.quantize(NAV_QUANTUM, rounding=ROUND_DOWN)
