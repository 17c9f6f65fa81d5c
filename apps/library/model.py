"""The library's value objects, circulation rules and refusals.

The figures are real ones (municipal-apps.md §2.5): 横浜 lends 10 items for 2 weeks and renews
once for 2 weeks when nobody holds the item; 越谷 lends at most 2 audio-visual items and refuses
a renewal while the patron has anything overdue; 調布 stops lending once an item is 15 days
late. No rule charges anything: 図書館法 §17 forbids any fee, so the only sanction is a block.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import Enum

from ...errors import MynacardError

ITEM_TYPES = ("book", "av")


@dataclass(frozen=True, slots=True)
class LoanRules:
    max_loans: int = 10               # 横浜, 越谷: 10 items across all branches
    max_av_loans: int = 2             # 越谷: of which 2 audio-visual
    loan_days: int = 14               # 2 weeks
    max_renewals: int = 1             # once
    renewal_days: int = 14            # 2 more weeks, counted from the renewal
    long_overdue_days: int = 15       # 調布: 15 days late → no loans until returned
    max_holds: int = 10               # [G]: Evergreen's "maximum number of holds"


class LinkStatus(Enum):
    ACTIVE = "active"
    SUPERSEDED = "superseded"         # the card's certificate was renewed and re-enrolled


class EnrolMethod(Enum):
    PIN = "pin"                       # strict: PIN, signed challenge, chain and revocation
    STAFF = "staff"                   # 顔認証 card: staff checked an identity document


@dataclass(frozen=True, slots=True)
class Link:
    link_key: str
    user_number: str
    status: LinkStatus
    method: EnrolMethod
    document: str | None              # what staff saw for a STAFF link (its kind, never its number)
    not_after: dt.datetime
    linked_at: dt.datetime
    card_serial: str | None = None    # the chip's 共通AP card serial, when the checks read it


@dataclass(frozen=True, slots=True)
class Item:
    barcode: str
    title: str
    item_type: str


@dataclass(frozen=True, slots=True)
class Loan:
    barcode: str
    user_number: str
    issued_at: dt.datetime
    due_at: dt.datetime
    renewals: int

    def days_overdue(self, now: dt.datetime) -> int:
        return max(0, (now - self.due_at).days)


@dataclass(frozen=True, slots=True)
class Hold:
    barcode: str
    user_number: str
    placed_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Member:
    user_number: str
    registered_at: dt.datetime
    link: Link | None                 # the active card link (None once superseded, not re-enrolled)
    loans: tuple[Loan, ...]
    holds: tuple[Hold, ...]


@dataclass(frozen=True, slots=True)
class Report:
    """Counts only: a report never names who read what."""

    members: int
    items: int
    loans: int
    overdue: int
    long_overdue: int
    holds: int


class LibraryError(MynacardError):
    """A library request that cannot be done; the message says what and why."""

    headline = "library"


class UnknownItem(LibraryError):
    pass


class UnknownMember(LibraryError):
    pass


class Refusal(Enum):
    """Why the counter says no (Evergreen's refusal reasons, mirrored: municipal-apps.md §2.5)."""

    ON_LOAN = "on-loan"
    NOT_ON_LOAN = "not-on-loan"
    HELD_FOR_ANOTHER = "held-for-another"
    TOO_MANY_LOANS = "too-many-loans"
    TOO_MANY_AV = "too-many-av"
    LONG_OVERDUE = "long-overdue"
    NOT_YOUR_LOAN = "not-your-loan"
    RENEWAL_LIMIT = "renewal-limit"
    RENEWAL_HELD = "renewal-held"
    RENEWAL_OVERDUE = "renewal-overdue"
    ALREADY_HELD = "already-held"
    TOO_MANY_HOLDS = "too-many-holds"
    ALREADY_BORROWED = "already-borrowed"


class CirculationRefused(LibraryError):
    """A loan, renewal or hold the rules do not allow; ``reason`` is machine-readable."""

    def __init__(self, reason: Refusal, message: str) -> None:
        super().__init__(message)
        self.reason = reason
