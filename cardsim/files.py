"""The card's file model: elementary files and the access rules that guard them.

Each application declares its file table as data — file id → one of these — and the
card OS enforces the rules; no application code checks access by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

from cardsim.pin import PinPolicy


@dataclass(frozen=True, slots=True)
class Access:
    """Who may use a file: nobody, everybody, or whoever verified any one of ``pins``."""

    pins: frozenset[int] = frozenset()
    always: bool = False

    def allows(self, verified: set[int] | frozenset[int]) -> bool:
        return self.always or not self.pins.isdisjoint(verified)


ALWAYS = Access(always=True)
NEVER = Access()


def after_verify(*pin_fids: int) -> Access:
    return Access(pins=frozenset(pin_fids))


@dataclass(frozen=True, slots=True)
class BinaryEF:
    """A transparent EF; its bytes live in the card image under the application's name."""

    description: str
    read: Access


@dataclass(frozen=True, slots=True)
class KeyEF:
    """An RSA private key; never readable, usable for signing under ``use``."""

    description: str
    use: Access


@dataclass(frozen=True, slots=True)
class PinEF:
    """A PIN key reference (internal EF) with its retry counter."""

    policy: PinPolicy


@dataclass(frozen=True, slots=True)
class OpaqueEF:
    """An EF the real card has but whose purpose is not public: selectable, never readable."""

    description: str


EF = BinaryEF | KeyEF | PinEF | OpaqueEF
