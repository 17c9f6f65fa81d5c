"""The library counter: enrol a card (strict, once), then staffed PIN-less taps for lending,
renewing and holding (公的個人認証法 §38の4 since 2024-05-27, municipal-apps.md §0 and §2.6).

Proving who holds the card is the relying-party recipes' job (``client.recipes``:
``enrol_strict`` and ``tap_check``); the service receives them as a :class:`CardChecks`, so
the same service runs with the real recipes (:class:`RecipeChecks`) or any other
implementation of the protocol. Every refusal of the recipes (wrong PIN, 顔認証 card, lost
card on hold, revoked card, clone, …) passes through unchanged: nothing is lent, linked or
renewed after one.

What the library keeps of a card is its ``link_key`` (issuer key id + certificate serial of
the authentication certificate), never a name, address or My Number.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ...clock import Clock, system_clock
from ...errors import MynacardError
from .model import EnrolMethod, Hold, Link, Loan, Member
from .store import LibraryStore

if TYPE_CHECKING:
    from ...readers.base import CardConnection

RE_ENROL = ("no library membership for this card's certificate: if the card's certificate was "
            "renewed (マイナンバーカードの電子証明書が更新されています), re-enrol at the counter "
            "with the PIN")
OTHER_CHIP = ("this certificate was enrolled on another card than this chip (a copied "
              "certificate): do not accept the card; staff should keep it")


class CardIdentityLike(Protocol):
    """What the service reads of ``client.recipes.CardIdentity``."""

    @property
    def link_key(self) -> str: ...

    @property
    def not_after(self) -> dt.datetime: ...

    @property
    def card_serial(self) -> str | None:
        """The chip's card serial (共通AP EF 0001), or None when the checks do not read it."""


class CardChecks(Protocol):
    """The two relying-party recipes, bound to a revocation configuration and a terminal."""

    def enrol(self, connection: CardConnection, pin: str) -> CardIdentityLike:
        """Strict: PIN, signed fresh challenge, chain and revocation; raises on refusal."""

    def tap(self, connection: CardConnection) -> CardIdentityLike:
        """PIN-less: certificate read, chain and revocation, chip genuineness; raises."""

    def not_enrolled(self, message: str) -> MynacardError:
        """The recipes' refusal for a card that has no link (``RefusalReason.NOT_ENROLLED``)."""

    def not_genuine(self, message: str) -> MynacardError:
        """The recipes' refusal for a certificate on the wrong chip (``NOT_GENUINE``)."""


@dataclass(frozen=True, slots=True)
class RecipeChecks:
    """:class:`CardChecks` through ``client.recipes`` (the agreed relying-party API)."""

    config: Any                      # client.recipes.RevocationConfig
    cv_anchors: dict[Any, Any]       # KeyId → RSAPublicKey, for the chip's genuineness
    terminal_id: str

    def enrol(self, connection: CardConnection, pin: str) -> CardIdentityLike:
        from ...client import recipes

        # With the CV anchors the card serial recorded beside the link is chip-authenticated,
        # like the one the tap compares it with.
        return recipes.enrol_strict(connection, pin, self.config, terminal_id=self.terminal_id,
                                    cv_anchors=self.cv_anchors)

    def tap(self, connection: CardConnection) -> CardIdentityLike:
        from ...client import recipes

        return recipes.tap_check(connection, self.config, cv_anchors=self.cv_anchors)

    def not_enrolled(self, message: str) -> MynacardError:
        from ...client import recipes

        return recipes.Refused(recipes.RefusalReason.NOT_ENROLLED, message)

    def not_genuine(self, message: str) -> MynacardError:
        from ...client import recipes

        return recipes.Refused(recipes.RefusalReason.NOT_GENUINE, message)


class Library:
    """One counter of the library: the store, the card checks, and the clock."""

    def __init__(self, store: LibraryStore, checks: CardChecks,
                 clock: Clock = system_clock) -> None:
        self.store = store
        self.checks = checks
        self.clock = clock

    def enrol(self, connection: CardConnection, pin: str, *,
              user_number: str | None = None) -> Link:
        """Strict enrolment: a new member, or (``user_number`` given, e.g. after the card's
        certificate was renewed) that member's membership moved to this certificate."""
        identity = self.checks.enrol(connection, pin)
        return self.store.link(identity.link_key, identity.not_after, self.clock(),
                               method=EnrolMethod.PIN, user_number=user_number,
                               card_serial=identity.card_serial)

    def enrol_by_staff(self, connection: CardConnection, document: str, *,
                       user_number: str | None = None) -> Link:
        """The staff path for a card that cannot do strict enrolment (顔認証 card: no PIN).
        Staff saw an identity document (its kind is recorded, never its number); the card is
        still checked PIN-less (certificate, revocation, genuine chip), and the link is
        flagged as a staff enrolment."""
        if not document.strip():
            raise MynacardError("say which identity document staff checked (e.g. 運転免許証)")
        identity = self.checks.tap(connection)
        return self.store.link(identity.link_key, identity.not_after, self.clock(),
                               method=EnrolMethod.STAFF, document=document.strip(),
                               user_number=user_number, card_serial=identity.card_serial)

    def tap(self, connection: CardConnection) -> Link:
        """The staffed tap: the card checked PIN-less, then matched to its active link, and
        the chip to the one the link was enrolled on (when both serials are known). The chip
        check alone cannot tell a genuine chip carrying another card's certificate (see
        docs/recipes.md); the serial recorded at enrolment can."""
        identity = self.checks.tap(connection)
        link = self.store.active_link(identity.link_key)
        if link is None:
            raise self.checks.not_enrolled(RE_ENROL)
        if (link.card_serial is not None and identity.card_serial is not None
                and link.card_serial != identity.card_serial):
            raise self.checks.not_genuine(OTHER_CHIP)
        return link

    def lend(self, connection: CardConnection, barcode: str) -> Loan:
        return self.store.lend(self.tap(connection).user_number, barcode, self.clock())

    def renew(self, connection: CardConnection, barcode: str) -> Loan:
        return self.store.renew(self.tap(connection).user_number, barcode, self.clock())

    def hold(self, connection: CardConnection, barcode: str) -> Hold:
        return self.store.hold(self.tap(connection).user_number, barcode, self.clock())

    def give_back(self, barcode: str) -> str | None:
        """Returns need no card: the item is enough, and its loan record is erased."""
        return self.store.give_back(barcode)

    def member(self, connection: CardConnection) -> Member:
        return self.store.member(self.tap(connection).user_number)
