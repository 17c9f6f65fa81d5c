"""The card's file model: elementary files and the access rules that guard them.

Each application declares its file table as data — file id → one of these — and the
card OS enforces the rules; no application code checks access by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..facts.pins import PinPolicy


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


class KeyUsage(Enum):
    """Which command may drive a key."""

    COMPUTE_SIGNATURE = "80 2A"
    """COMPUTE DIGITAL SIGNATURE, the key named by P2 (current EF or ``80 | SFI``)."""
    DEFAULT_SIGNATURE = "80 2A P2=00"
    """The 券面 APs' own key, signed with through ``80 2A`` P2 ``00`` (no EF named)."""
    INTERNAL_AUTHENTICATE = "00 88"


@dataclass(frozen=True, slots=True)
class KeyEF:
    """An RSA private key; never readable, usable under ``use`` by the commands in ``usage``."""

    description: str
    use: Access
    usage: frozenset[KeyUsage] = frozenset({KeyUsage.COMPUTE_SIGNATURE})


@dataclass(frozen=True, slots=True)
class RecordEF:
    """A record-structured EF; its card-image bytes are the records, one SIMPLE-TLV each."""

    description: str
    read: Access


@dataclass(frozen=True, slots=True)
class PinEF:
    """A PIN key reference (internal EF) with its retry counter.

    ``changeable`` False: the value is derived from the card face (照合番号, birth date) and
    CHANGE REFERENCE DATA / CHANGE KEY answer ``6985``.
    """

    policy: PinPolicy
    changeable: bool = True


@dataclass(frozen=True, slots=True)
class OpaqueEF:
    """An EF the real card has but whose purpose is not public: selectable, never readable."""

    description: str


@dataclass(frozen=True, slots=True)
class KeyReferenceEF:
    """An internal EF (key or PIN reference) the real card has but whose purpose is not
    public: SELECT answers ``9000``; READ BINARY, VERIFY, ``80 2A`` and ``00 88`` answer
    ``6981`` as for every key the simulator cannot use this way.

    Client code lists these ids as existing (AokiApp/jsapdu ``UNKNOWN_*``) and
    soltia48/myna-card's probe selects some of them as key references, aborting unless
    SELECT answers ``9000``; what an empty VERIFY answers on them is not published, so the
    simulator does not make up a retry counter for them.
    """

    description: str


EF = BinaryEF | RecordEF | KeyEF | PinEF | OpaqueEF | KeyReferenceEF
