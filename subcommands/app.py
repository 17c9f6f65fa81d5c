"""``mynacard app …``: the municipal applications, each loaded only when it runs."""

from __future__ import annotations

import click

from .common import LazyGroup

APPS: dict[str, tuple[str, str]] = {
    "library": ("apps.library.cli:library",
                "Library card (図書館カード): enrol a card, then lend, return, renew, hold."),
    "taxi": ("apps.taxi.cli:taxi",
             "マイタク taxi-fare subsidy: city keys, terminals, offline rides on the card."),
    "shelter": ("apps.shelter.cli:shelter",
                "避難所受付: PIN-less check-in by 照合番号B, households, sync, staff page."),
}


@click.group(cls=LazyGroup, lazy=APPS)
def app() -> None:
    """Municipal applications on the card: they work on the simulator (--card DIR) and on a real
    card in a PC/SC reader (--reader pcsc)."""
