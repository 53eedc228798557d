"""Write data/demo/collateral.csv: the collateral the demo book's accounts hold, for `tokenclear stress`.

Each account holds its HS-VaR requirement (as `tokenclear margin` computes it on the shipped data) plus 5%,
after today's published haircuts, in its member's mix: members 1, 5, 9, ... all in USDC; 2, 6, ... T-bills 60% and
the tokenized MMF 40%; 3, 7, ... ether 50% and USDC 50%; 4, 8, ... USDC 40%, T-bills 40%, bitcoin 20%.
Run: python scripts/write_demo_collateral.py [OUT]
"""

from __future__ import annotations

import sys
from pathlib import Path

from tokenclear import runner
from tokenclear.settings import Settings
from tokenclear.stress.run import collateral_terms, member_of

MIXES = ({"USDC": 1.0}, {"TBILL": 0.6, "TMMF": 0.4}, {"ETH": 0.5, "USDC": 0.5},
         {"USDC": 0.4, "TBILL": 0.4, "BTC": 0.2})
CUSHION = 1.05


def rows(settings: Settings) -> list[str]:
    setup = runner.risk_setup(settings)
    inputs = runner.load_inputs(settings, positions=None, instruments=None, prices=None)
    run = runner.run_book_margin(settings, inputs, setup, as_of=None, method="hsvar")
    names = sorted({name for mix in MIXES for name in mix})
    terms = collateral_terms(settings, names, runner.parse_as_of(run.as_of))
    price, haircut = terms.price, terms.haircut
    out = ["account,asset,quantity"]
    for row in run.accounts:
        member = int(member_of(row.account).lstrip("M"))
        for asset, share in MIXES[(member - 1) % len(MIXES)].items():
            j = names.index(asset)
            units = float(row.margin) * CUSHION * share / (price[j] * (1.0 - haircut[j]))
            out.append(f"{row.account},{asset},{units:.6f}")
    return out


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "data" / "demo" / \
        "collateral.csv"
    out.write_text("\n".join(rows(Settings())) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
