"""The online variant of the in-taxi terminal: no free-space application on the card.

Each rider taps the card; the terminal runs the staffed tap of the relying-party recipes
(``client.recipes.tap_check``: the authentication certificate read without a PIN, validated
with revocation, the chip proven genuine) and sends the certificates' link keys with the fare
to the ledger (``POST /online-ride``), which holds eligibility and counts and answers each
rider's subsidy or refusal. A card the tap refuses (on hold after a reported loss, revoked,
expired, not genuine, unreadable) is never sent. Without the network there is no ride.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ...client.recipes import CardIdentity, Refused
from ...readers.base import CardConnection
from .ledger import OnlineOutcome, OnlineRefusal

Tap = Callable[[CardConnection], CardIdentity]
Ask = Callable[[list[str], int], list[OnlineOutcome]]


@dataclass(frozen=True)
class OnlineCard:
    """One tapped card: the ledger's answer, or the tap's refusal (never sent)."""

    outcome: OnlineOutcome | None = None
    tap_refusal: Refused | None = None

    @property
    def subsidy(self) -> int:
        return self.outcome.subsidy if self.outcome else 0

    @property
    def refusal(self) -> str | None:
        """The refusal's name: the tap's (``on-hold``, …) or the ledger's (``daily-cap``, …)."""
        if self.tap_refusal is not None:
            return self.tap_refusal.reason.value
        refusal: OnlineRefusal | None = self.outcome.refusal if self.outcome else None
        return refusal.value if refusal else None


def ride_online(connections: Sequence[CardConnection], fare: int, *, tap: Tap,
                ask: Ask) -> list[OnlineCard]:
    """Tap every card, then ask the ledger once for the whole ride (its riders share it)."""
    tapped: list[OnlineCard | str] = []
    for connection in connections:
        try:
            tapped.append(tap(connection).link_key)
        except Refused as refused:
            tapped.append(OnlineCard(tap_refusal=refused))
    keys = [t for t in tapped if isinstance(t, str)]
    answers = iter(ask(keys, fare) if keys else [])
    return [t if isinstance(t, OnlineCard) else OnlineCard(next(answers)) for t in tapped]
