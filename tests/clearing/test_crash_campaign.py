"""A short crash campaign (the long one is bench/crash_campaign.py): a full run killed at random instruction
boundaries and restarted each time loses nothing, applies nothing twice and reconciles clean, and ends in the
same book as the run without kills."""

from __future__ import annotations

from tokenclear.clearing.campaign import campaign
from tokenclear.ledger.chain import embedded_chain
from tokenclear.store.store import open_store


def test_random_kills_lose_nothing_and_apply_nothing_twice(tmp_path):
    count = [0]

    def make():
        count[0] += 1
        return embedded_chain(), open_store(f"sqlite:///{tmp_path / f'book-{count[0]}.db'}")

    result = campaign(make, kills=8, per_run=8, members=4, seed=7)
    assert result.kills >= 8 and 1 <= result.restarts <= result.kills  # a kill may land in a restart
    assert (result.lost, result.applied_twice, result.reconciliation_breaks) == (0, 0, 0), result.differences
