"""The variation-margin batch (pure): which legs are paid in the stablecoin, which the token would refuse.

VM is paid both ways in one batch: a member that owes pays the clearing house, the clearing house pays a
member owed. VM is a USD amount paid in the stablecoin at the cycle's guarded price of the stablecoin, so a
member owed 1,000 USD when it trades at 0.97 receives 1,030.93 tokens. A leg the token's ERC-1404
pre-check refuses (frozen or paused wallet, not enough balance) is left out rather than reverting
everyone's VM, and kept with the token's reason so that VM a member could not pay joins its requirement.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_EVEN, Decimal

from tokenclear.clearing.coverage import MICRO

PAR_E8 = 10**8


def token_units(usd: Decimal, price_e8: int, decimals: int = 6) -> int:
    """Units of a token worth ``usd`` at ``price_e8`` (USD per whole token, 8 decimals), half to even: VM is a
    USD amount, paid in the stablecoin at its market value (more tokens when it trades below par)."""
    return int((usd * 10**decimals * PAR_E8 / price_e8).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def vm_batch(rows: Sequence, wallets: dict[str, str], operator: str,
             restrictions: Callable[[list[tuple[str, str, int]]], list[str | None]], price_e8: int = PAR_E8) -> dict:
    """The batch's stored parameters: ``legs`` [payer, receiver, units], ``accounts`` [account, signed units,
    signed USD] (> 0 paid by the member), ``blocked`` [{account, units, usd, reason}], ``price_e8`` (the
    token's price the units were taken at). ``rows`` carry ``account`` and ``vm`` (USD, > 0 owed by the
    member); ``restrictions(transfers)`` is the token's pre-check of each (payer, receiver, units), None
    where it passes (one call for the whole batch)."""
    params: dict = {"legs": [], "accounts": [], "blocked": [], "price_e8": price_e8}
    legs = []
    for row in rows:
        units = token_units(row.vm, price_e8)
        if units == 0:
            continue
        payer, receiver = (wallets[row.account], operator) if units > 0 else (operator, wallets[row.account])
        legs.append((row, units, (payer, receiver, abs(units))))
    reasons = restrictions([transfer for _, _, transfer in legs]) if legs else []
    for (row, units, transfer), reason in zip(legs, reasons, strict=True):
        if reason is not None:
            params["blocked"].append({"account": row.account, "units": units, "usd": str(row.vm), "reason": reason})
            continue
        params["legs"].append(list(transfer))
        params["accounts"].append([row.account, units, str(row.vm)])
    return params


def usd_of(entry: list | dict) -> Decimal:
    """The USD amount of an ``accounts`` entry or a ``blocked`` leg (batches stored before the USD was kept
    were paid at par: units / 10^6)."""
    if isinstance(entry, dict):
        return Decimal(entry["usd"]) if "usd" in entry else Decimal(entry["units"]) / MICRO
    return Decimal(entry[2]) if len(entry) > 2 else Decimal(entry[1]) / MICRO


def paid(params: dict) -> tuple[Decimal, Decimal]:
    """(paid by members, paid to members), USD."""
    amounts = [usd_of(entry) for entry in params["accounts"]]
    return (sum((a for a in amounts if a > 0), Decimal(0)), sum((-a for a in amounts if a < 0), Decimal(0)))
