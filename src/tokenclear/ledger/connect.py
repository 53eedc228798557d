"""Choose the chain from the settings: embedded by default, a JSON-RPC node when ``rpc_url`` is set."""

from __future__ import annotations

from tokenclear.errors import ConfigurationError
from tokenclear.ledger.chain import Chain, EmbeddedChain, RpcChain, shown_url
from tokenclear.settings import Settings


def open_chain(settings: Settings, rpc_url: str | None = None) -> Chain:
    url = rpc_url or settings.rpc_url
    if not url:
        return EmbeddedChain()
    if settings.private_key is not None:
        return RpcChain(url, settings.private_key.get_secret_value())
    if settings.keystore is not None:
        password = settings.keystore_password.get_secret_value() if settings.keystore_password else ""
        return RpcChain.from_keystore(url, settings.keystore, password)
    raise ConfigurationError(f"{shown_url(url)}: a JSON-RPC chain needs a signing key: set TOKENCLEAR_PRIVATE_KEY, or "
                             "TOKENCLEAR_KEYSTORE and TOKENCLEAR_KEYSTORE_PASSWORD")
