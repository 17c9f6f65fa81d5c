"""mynacard command line: the root group, its lazy command table, and the one error boundary.

Each group lives in its own module under ``subcommands/`` (or ``apps/<app>/cli.py``) and is
imported only when it runs. Every error mynacard raises on purpose is a ``MynacardError``;
this is the one place that turns it into a single line on stderr and exit status 1.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from .errors import MynacardError
from .subcommands.common import LazyGroup

COMMANDS: dict[str, tuple[str, str]] = {
    "card": ("subcommands.card:card", "Issue and inspect cards."),
    "sign": ("subcommands.sign:sign", "Sign a file with a card key."),
    "apdu": ("subcommands.sign:apdu", "Send raw command APDUs to a card."),
    "demo": ("subcommands.demo:demo", "Issue a card, sign with both keys, lock the PIN."),
    "serve": ("subcommands.serve:serve", "Put card images into pcscd's virtual reader."),
    "pki": ("subcommands.pki:pki", "The simulator's JPKI: CAs, certificates, revocation."),
    "vectors": ("subcommands.vectors:vectors", "Revocation test vectors for vendors."),
    "trace": ("subcommands.trace:trace", "Record, replay and compare APDU traces."),
    "app": ("subcommands.app:app", "Municipal applications on the card (library, …)."),
}


class MynacardCLI(LazyGroup):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MynacardError as exc:
            headline = getattr(exc, "headline", None) or type(exc).__name__
            raise click.ClickException(f"{headline}: {exc}") from None


@click.group(cls=MynacardCLI, lazy=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mynacard")
def main() -> None:
    """Virtual My Number cards (マイナンバーカード), their PKI, and the tools to talk to them.

    Every command that talks to a card goes through the reader layer, so it works the
    same on a simulated card (--card DIR), on the simulator served through pcscd, or on
    a real card in a PC/SC reader (--reader pcsc).
    """


if __name__ == "__main__":
    sys.exit(main())
