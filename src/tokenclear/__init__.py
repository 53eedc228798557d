"""tokenclear: tokenized collateral and margin for derivatives clearing."""

__version__ = "0.1.0"
