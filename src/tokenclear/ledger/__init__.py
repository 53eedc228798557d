"""EVM ledger: Vyper contracts (``contracts/``, AGPL-3.0), their compiled artefacts, the embedded and
JSON-RPC chains, the ABI codec and the ``Ledger`` facade the clearing workflow talks to."""
