"""The shelter's value objects (municipal-apps.md §4.3): shelters, households, persons and
the append-only stay events, plus the rules that need no database (age bands, the dedup key).

A person's ``dedup_key`` (SHA-256 of the normalised name ‖ birth date ‖ sex) links the same
person across shelters and devices without the My Number.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import unicodedata
from dataclasses import dataclass, field
from enum import Enum

from ...errors import MynacardError


class ShelterError(MynacardError):
    """A shelter operation cannot be done; the message tells staff why and what to do."""


class UnknownRecord(ShelterError):
    """No shelter, household or person with that id on this device."""


class Source(Enum):
    """Where a person's facts came from (§4.3)."""

    CARD_B = "card_b"          # 照合番号B, 4 facts verified offline (the default path)
    CARD_PIN = "card_pin"      # 券面事項入力補助 PIN
    KAZASHI = "kazashi"        # tap of a card enrolled earlier (auth certificate)
    MANUAL = "manual"          # typed by staff: unverified


class EventKind(Enum):
    CHECK_IN = "check_in"
    CHECK_OUT = "check_out"
    DAY_VISIT = "day_visit"    # Noto: people sleeping elsewhere came for supplies (§4.4)
    SUPPLY = "supply"


NEEDS: dict[str, str] = {
    "elderly": "高齢",
    "disability": "障害",
    "infant": "乳幼児",
    "pregnant": "妊産婦",
    "allergy": "アレルギー",
    "medication": "服薬",
}
"""要配慮 needs (§4.3): sensitive, shown to staff and in counts, never in the safety list."""

CONSENT_FIELDS: dict[str, str] = {
    "name": "氏名",
    "address": "住所",
    "status": "避難状況",
}
"""安否情報 items the evacuee may agree to disclose, one by one (消防庁 format, §4.5)."""

SEX_LABELS = {"1": "男", "2": "女", "9": "適用不能", "0": "不明"}

AGE_BANDS: tuple[tuple[str, int, int], ...] = (
    ("0-5", 0, 5), ("6-17", 6, 17), ("18-64", 18, 64), ("65-74", 65, 74), ("75+", 75, 200))
"""Bands for supplies (乳幼児 food, school-age, adults, 前期/後期高齢者)."""


def normalise_name(name: str) -> str:
    """NFKC, no spaces of any width: 「黒桐　幹也」 and 「黒桐 幹也」 are one person."""
    return "".join(unicodedata.normalize("NFKC", name).split())


def dedup_key(name: str, birth_date: dt.date | None, sex: str) -> str:
    text = f"{normalise_name(name)}|{birth_date.isoformat() if birth_date else ''}|{sex}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def age_on(birth_date: dt.date, day: dt.date) -> int:
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month,
                                                                    birth_date.day))


def age_band(birth_date: dt.date | None, day: dt.date) -> str:
    if birth_date is None:
        return "unknown"
    age = age_on(birth_date, day)
    return next(name for name, low, high in AGE_BANDS if low <= age <= high)


@dataclass(frozen=True, slots=True)
class Facts:
    """A person as read from the card or typed by staff, before the roster keeps it."""

    name: str
    address: str
    birth_date: dt.date | None
    sex: str
    source: Source
    verified: bool
    """True only when the integrity chain and the chip both checked out (or a verified tap)."""
    issuer: str | None = None
    """The CV chain that vouched for the facts (card paths) — for the audit."""
    link_key: str | None = None
    """Tap path: the auth certificate's link key the person was enrolled under."""


@dataclass(frozen=True, slots=True)
class Shelter:
    id: str
    name: str
    municipality_code: str
    capacity: int | None


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    household_id: str
    name: str
    name_kana: str
    birth_date: dt.date | None
    sex: str
    address_card: str
    address_current: str
    source: Source
    card_verified: bool
    needs: tuple[str, ...]
    consent: tuple[str, ...]
    dedup_key: str
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Household:
    id: str
    shelter_id: str
    head_person_id: str | None
    notes: str
    members: tuple[Person, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class StayEvent:
    device_id: str
    seq: int
    person_id: str
    shelter_id: str
    kind: EventKind
    at: dt.datetime
    staff: str
    from_shelter: str | None = None
    """A check-in of someone last checked in at another shelter: the movement's origin."""
    note: str = ""


@dataclass(frozen=True, slots=True)
class CheckInResult:
    person: Person
    event: StayEvent | None
    """None when the person was already checked in here: nothing new is recorded."""
    already_since: dt.datetime | None = None
    """For a repeat: when the standing check-in happened (「すでに受付済みです (HH:MM)」)."""

    @property
    def repeat(self) -> bool:
        return self.event is None

    @property
    def movement_from(self) -> str | None:
        return self.event.from_shelter if self.event else None
