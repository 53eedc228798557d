"""The ``tokenclear`` command line (Typer + rich): the app and its command groups, one module each."""

from tokenclear.cli import clearing, collateral, ledger, margin, service, stress  # noqa: F401  (each registers its commands)
from tokenclear.cli.app import app


def main() -> None:  # pragma: no cover - console entry point alias
    app()


__all__ = ["app", "main"]
