"""Gas and speed of the ledger on the embedded EVM (titanoboa) and on anvil (JSON-RPC).

Prints gas per operation, pledges and DvPs per second, and the variation-margin batch of a margin
cycle for 1,000 accounts (targets: embedded < 3 s, anvil < 15 s) against paying them one by one.
Run: make bench (or .venv/bin/python bench/bench_ledger.py).
"""

from __future__ import annotations

import os
import secrets
import time

from eth_account import Account

from tokenclear.ledger.anvil import anvil
from tokenclear.ledger.chain import Chain, EmbeddedChain, Receipt, RpcChain
from tokenclear.ledger.ledger import HOUSE, MAX_UINT, VM_CHUNK, Ledger, Payment
from tokenclear.ledger.privacy import account_id

USD, ETH = 10**6, 10**18
THROUGHPUT_N = 200
VM_ACCOUNTS = int(os.environ.get("BENCH_VM_ACCOUNTS", "1000"))
START = 1_678_406_400


def two_members(chain: Chain) -> tuple[Ledger, str, str, bytes]:
    """A fresh deployment with two funded members and m1's house account."""
    ledger = Ledger.deploy(chain)
    m1, m2 = chain.new_account(), chain.new_account()
    ledger.onboard([m1, m2])
    for m in (m1, m2):
        ledger.authorise(m)
        ledger.issue("TUSD", m, 10**7 * USD)
        ledger.issue("WETH", m, 1_000 * ETH)
    acct = account_id(b"b" * 32, "M1", "H")
    ledger.open_account(acct, m1, HOUSE)
    return ledger, m1, m2, acct


def gas_receipts(chain: Chain) -> dict[str, Receipt]:
    """The receipt of each benchmarked operation."""
    ledger, m1, m2, acct = two_members(chain)
    out = {"ERC-20 transfer (permissioned)": ledger.token("TUSD").send("transfer", m2, 1, sender=m1),
           "pledge": ledger.pledge("p1", acct, "WETH", 10 * ETH, m1),
           "pledge replay (no-op)": ledger.pledge("p1", acct, "WETH", 10 * ETH, m1),
           "release": ledger.release("r1", acct, "WETH", ETH),
           "substitution": ledger.substitute("s1", acct, "WETH", ETH, "TUSD", 1_500 * USD, m1),
           "DvP": ledger.dvp("d1", "WETH", m1, ETH, "TUSD", m2, 1_500 * USD)}
    usd = ledger.token("TUSD").address
    legs = [(usd, m1, m2, 1 + i) if i % 2 else (usd, m2, m1, 1 + i) for i in range(100)]
    out["batch of 100 legs (settle_batch)"] = ledger.settlement.send(
        "settle_batch", b"b".ljust(32, b"\0"), legs, sender=ledger.operator)
    pays = [Payment(m1, m2, 1 + i) if i % 2 else Payment(m2, m1, 1 + i) for i in range(100)]
    out["batch of 100 legs (token batch)"] = ledger.settle_payments("vm", pays)[0]
    return out


def throughput(chain: Chain) -> tuple[float, float]:
    ledger, m1, m2, acct = two_members(chain)
    t0 = time.perf_counter()
    for i in range(THROUGHPUT_N):
        ledger.pledge(f"p{i}", acct, "WETH", ETH // 100, m1)
    pledges = THROUGHPUT_N / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for i in range(THROUGHPUT_N):
        ledger.dvp(f"d{i}", "WETH", m1, ETH // 100, "TUSD", m2, 15 * USD)
    return pledges, THROUGHPUT_N / (time.perf_counter() - t0)


def vm_cycle(chain: Chain) -> tuple[float, float, int]:
    """(batch seconds, one-by-one seconds, legs): half the accounts pay the clearing house, half receive."""
    ledger = Ledger.deploy(chain)
    op = ledger.operator
    payers = [chain.new_account() for _ in range(VM_ACCOUNTS // 2)]
    receivers = [Account.from_key(secrets.token_bytes(32)).address for _ in range(VM_ACCOUNTS - len(payers))]
    ledger.onboard(payers + receivers)
    usd = ledger.token("TUSD")
    ledger.issue("TUSD", op, 10**9 * USD)
    for p in payers:
        ledger.issue("TUSD", p, 10**6 * USD)
        usd.send("approve", ledger.settlement.address, MAX_UINT, sender=p)
    payments = [Payment(p, op, 1_000 * USD + i) for i, p in enumerate(payers)]
    payments += [Payment(op, r, 2_000 * USD + i) for i, r in enumerate(receivers)]
    t0 = time.perf_counter()
    ledger.settle_payments("vm-cycle-1", payments)
    batch = time.perf_counter() - t0
    t0 = time.perf_counter()
    for p in payments:  # the same payments, one transaction each
        usd.send("transfer", p.receiver, p.units, sender=p.payer)
    single = time.perf_counter() - t0
    return batch, single, len(payments)


def report(name: str, chain_factory) -> dict:
    chain = chain_factory()
    receipts = gas_receipts(chain)
    pledges, dvps = throughput(chain)
    batch, single, legs = vm_cycle(chain)
    print(f"\n== {name} ==")
    for op, receipt in receipts.items():
        print(f"  gas {op:<36} {receipt.gas_used:>12,}  (execution {receipt.execution_gas:,})")
    print(f"  pledges/s {pledges:>10.0f}    DvPs/s {dvps:>10.0f}")
    print(f"  VM batch, {legs} accounts: {batch:.2f} s in {-(-legs // VM_CHUNK)} batches; one by one: {single:.2f} s "
          f"({single / batch:.1f}x slower)")
    return {"execution": {op: r.execution_gas for op, r in receipts.items()}, "batch": batch}


def main() -> None:
    embedded = report("embedded (titanoboa py-evm)", lambda: EmbeddedChain(start_time=START))
    with anvil(start_time=START) as node:
        rpc = report("anvil 1.7.1 over JSON-RPC (web3.py)", lambda: RpcChain(node.url, node.funder_key))
    print("\ntargets: VM batch for 1,000 accounts < 3 s embedded, < 15 s anvil")
    print(f"  embedded {embedded['batch']:.2f} s ({embedded['batch'] / 3:.0%} of target); "
          f"anvil {rpc['batch']:.2f} s ({rpc['batch'] / 15:.0%} of target)")
    same = sum(embedded["execution"][op] == rpc["execution"][op] for op in embedded["execution"])
    print(f"  execution gas equal on both chains for {same} of {len(embedded['execution'])} operations "
          "(totals differ only by the calldata bytes of different random addresses)")


if __name__ == "__main__":
    main()
