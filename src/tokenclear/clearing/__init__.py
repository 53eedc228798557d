"""The clearing workflow: margin calls, the margin cycle, settlement on chain, reconciliation."""
