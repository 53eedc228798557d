"""The variation-margin batch (pure): which legs are paid in the stablecoin, which the token would refuse.

VM is paid both ways in one batch: a member that owes pays the clearing house, the clearing house pays a
member owed. A leg the token's ERC-1404 pre-check refuses (frozen or paused wallet, not enough balance)
is left out rather than reverting everyone's VM, and kept with the token's reason so that VM a member could
not pay joins its requirement.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal

from tokenclear.clearing.coverage import MICRO, micro


def vm_batch(rows: Sequence, wallets: dict[str, str], operator: str,
             restriction: Callable[[str, str, int], str | None]) -> dict:
    """The batch's stored parameters: ``legs`` [payer, receiver, units], ``accounts`` [account, signed units]
    (> 0 paid by the member), ``blocked`` [{account, units, reason}]. ``rows`` carry ``account`` and ``vm``
    (USD, > 0 owed by the member); ``restriction(payer, receiver, units)`` is the token's pre-check."""
    params: dict = {"legs": [], "accounts": [], "blocked": []}
    for row in rows:
        units = micro(row.vm)  # cents -> 6-decimal stablecoin units, exact
        if units == 0:
            continue
        payer, receiver = (wallets[row.account], operator) if units > 0 else (operator, wallets[row.account])
        reason = restriction(payer, receiver, abs(units))
        if reason is not None:
            params["blocked"].append({"account": row.account, "units": units, "reason": reason})
            continue
        params["legs"].append([payer, receiver, abs(units)])
        params["accounts"].append([row.account, units])
    return params


def paid(params: dict) -> tuple[Decimal, Decimal]:
    """(paid by members, paid to members), USD."""
    by = sum((Decimal(units) / MICRO for _, units in params["accounts"] if units > 0), Decimal(0))
    to = sum((Decimal(-units) / MICRO for _, units in params["accounts"] if units < 0), Decimal(0))
    return by, to
