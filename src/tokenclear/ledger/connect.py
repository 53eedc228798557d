"""Choose the chain from the settings: embedded by default (revm, or py-evm with TOKENCLEAR_EVM), a JSON-RPC
node when ``rpc_url`` is set; and who holds each role of a new deployment."""

from __future__ import annotations

from tokenclear.errors import ConfigurationError
from tokenclear.ledger.chain import Chain, RpcChain, embedded_chain, shown_url
from tokenclear.ledger.ledger import Roles
from tokenclear.settings import Settings

#: The role keys a JSON-RPC deployment may hold apart from the operator's (TOKENCLEAR_PRIVATE_KEY).
ROLE_KEYS = ("admin_key", "parameter_key", "default_manager_key", "token_agent_key")


def open_chain(settings: Settings, rpc_url: str | None = None) -> Chain:
    """The chain, signing over JSON-RPC with the operator's key and every role key configured."""
    url = rpc_url or settings.rpc_url
    if not url:
        return embedded_chain(settings.evm)
    if settings.private_key is not None:
        chain = RpcChain(url, settings.private_key.get_secret_value())
    elif settings.keystore is not None:
        password = settings.keystore_password.get_secret_value() if settings.keystore_password else ""
        chain = RpcChain.from_keystore(url, settings.keystore, password)
    else:
        raise ConfigurationError(f"{shown_url(url)}: a JSON-RPC chain needs a signing key: set "
                                 "TOKENCLEAR_PRIVATE_KEY, or TOKENCLEAR_KEYSTORE and TOKENCLEAR_KEYSTORE_PASSWORD")
    for name in ROLE_KEYS:
        secret = getattr(settings, name)
        if secret is not None:
            chain.add_key(secret.get_secret_value(), f"TOKENCLEAR_{name.upper()}")
    return chain


def deployment_roles(settings: Settings, chain: Chain) -> tuple[Roles, list[str]]:
    """Who holds each power of a new deployment, and a warning when one key holds several. The embedded EVM
    makes a key per role; over JSON-RPC the operator signs with TOKENCLEAR_PRIVATE_KEY and each other role
    with its own key where one is set (a key made in this process would be lost on restart)."""
    if not isinstance(chain, RpcChain):
        return Roles.separate(chain), []
    keys = {name: getattr(settings, name) for name in ROLE_KEYS}
    address = {name: chain.add_key(secret.get_secret_value(), f"TOKENCLEAR_{name.upper()}") if secret else chain.funder
               for name, secret in keys.items()}
    roles = Roles(address["admin_key"], chain.funder, address["parameter_key"], address["default_manager_key"],
                  address["token_agent_key"])
    unset = [f"TOKENCLEAR_{name.upper()}" for name, secret in keys.items() if secret is None]
    warnings = [f"one key ({chain.funder}) holds several roles: set {', '.join(unset)} to give each its own key"
                ] if roles.shared else []
    return roles, warnings
