"""The person a card belongs to: the resident record (基本4情報 and residence), the Japanese
eras, the 12-digit My Number and its check digit, and 照合番号B.

``Resident`` validates itself and names the broken rule (``PersonError(field, rule)``);
``Resident.from_mapping`` is the one decoder for a resident given as data (JSON from the
PKI commands, the persona YAML after it has been flattened).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ..errors import MynacardError

MAX_NAME_CHARS = 100
MAX_ADDRESS_CHARS = 200
"""Generous bounds (the printed card holds far less) that keep every record encodable."""


class PersonError(MynacardError, ValueError):
    """A person's data breaks a rule; the message names the field and the rule."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class Sex(Enum):
    """JIS X 0303 / ISO 5218 codes as the card and the certificate carry them."""

    UNKNOWN = "0"
    MALE = "1"
    FEMALE = "2"
    NOT_APPLICABLE = "9"


# -- eras (元号) -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Era:
    code: int
    """Digit used in the JPKI birth-date otherName (1 明治 … 5 令和)."""
    name: str
    romaji: str
    first_day: dt.date


ERAS: tuple[Era, ...] = (
    Era(1, "明治", "Meiji", dt.date(1868, 1, 25)),
    Era(2, "大正", "Taisho", dt.date(1912, 7, 30)),
    Era(3, "昭和", "Showa", dt.date(1926, 12, 25)),
    Era(4, "平成", "Heisei", dt.date(1989, 1, 8)),
    Era(5, "令和", "Reiwa", dt.date(2019, 5, 1)),
)


def era_of(day: dt.date) -> Era:
    for era in reversed(ERAS):
        if day >= era.first_day:
            return era
    raise PersonError("birth_date", f"{day} is before the Meiji era")


def era_year(day: dt.date) -> int:
    """Year within its era (元年 = 1)."""
    return day.year - era_of(day).first_day.year + 1


def era_yymmdd(day: dt.date) -> str:
    """``YYMMDD`` with the era year, as used by the 券面 APs' keys (e.g. 1980-02-17 → 550217)."""
    return f"{era_year(day) % 100:02d}{day.month:02d}{day.day:02d}"


def jpki_birth_date(day: dt.date) -> str:
    """``EYYYYMMDD`` of the signing certificate's birth-date otherName.

    E is the era digit; the date itself is Gregorian.
    """
    return f"{era_of(day).code}{day:%Y%m%d}"


def nth_birthday_after(issued: dt.date, birth_date: dt.date, n: int) -> dt.date:
    """The n-th birthday strictly after ``issued``; 29 February falls on 28 February in
    common years."""
    def birthday_in(year: int) -> dt.date:
        try:
            return birth_date.replace(year=year)
        except ValueError:
            return dt.date(year, 2, 28)

    first_year = issued.year if birthday_in(issued.year) > issued else issued.year + 1
    return birthday_in(first_year + n - 1)


# -- the individual number (個人番号) -----------------------------------------------------------

class InvalidMyNumber(PersonError):
    """Not 12 digits, or a wrong check digit."""

    def __init__(self, rule: str) -> None:
        super().__init__("my_number", rule)


def my_number_check_digit(first_eleven: str) -> int:
    """Check digit per the 番号法施行令 §8 formula (weights 2-7, 2-6 from the right, mod 11)."""
    if len(first_eleven) != 11 or not first_eleven.isascii() or not first_eleven.isdigit():
        raise InvalidMyNumber("the base of a My Number is 11 ASCII digits")
    total = 0
    for n, digit in enumerate(reversed(first_eleven), start=1):
        weight = n + 1 if n <= 6 else n - 5
        total += int(digit) * weight
    remainder = total % 11
    return 0 if remainder <= 1 else 11 - remainder


def validate_my_number(number: str) -> str:
    if len(number) != 12 or not number.isascii() or not number.isdigit():
        raise InvalidMyNumber(f"a My Number is 12 ASCII digits, got {number!r}")
    if my_number_check_digit(number[:11]) != int(number[11]):
        raise InvalidMyNumber(
            f"check digit of {number} should be {my_number_check_digit(number[:11])}")
    return number


def generate_my_number() -> str:
    base = f"{secrets.randbelow(10**11):011d}"
    return base + str(my_number_check_digit(base))


def code_b(birth_date: dt.date, card_expiry_year: int, security_code: str) -> str:
    """照合番号B: birth YYMMDD in era years ‖ card expiry year ‖ 4-digit security code
    (facts §8) — what a host builds from the card face to read the 基本4情報 without a PIN."""
    if len(security_code) != 4 or not security_code.isascii() or not security_code.isdigit():
        raise PersonError("security_code", "must be 4 digits")
    if not 1000 <= card_expiry_year <= 9999:
        raise PersonError("card_expiry", "the expiry year must have 4 digits")
    return f"{era_yymmdd(birth_date)}{card_expiry_year:04d}{security_code}"


# -- the resident record -----------------------------------------------------------------------

def _text(field: str, value: object, *, max_chars: int, ascii_only: bool = False,
          empty_ok: bool = False) -> None:
    if not isinstance(value, str):
        raise PersonError(field, "must be a string")
    if not value and not empty_ok:
        raise PersonError(field, "must not be empty")
    if len(value) > max_chars:
        raise PersonError(field, f"must be at most {max_chars} characters")
    if any(ord(c) < 0x20 or 0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise PersonError(field, "must not contain control characters or lone surrogates")
    if ascii_only and not value.isascii():
        raise PersonError(field, "must be romaji (ASCII), e.g. Kiyose-shi")


@dataclass(frozen=True, slots=True)
class Resident:
    family_name: str
    given_name: str
    address: str
    birth_date: dt.date
    sex: Sex
    prefecture_romaji: str
    """e.g. ``Tokyo-to``; the signing certificate's first ``L=``."""
    municipality_romaji: str
    """e.g. ``Kiyose-shi``; the signing certificate's second ``L=``."""
    municipality_code: str
    """5-digit 全国地方公共団体コード without its check digit (e.g. ``13221``)."""

    def __post_init__(self) -> None:
        _text("family_name", self.family_name, max_chars=MAX_NAME_CHARS)
        _text("given_name", self.given_name, max_chars=MAX_NAME_CHARS, empty_ok=True)
        for field, value in (("family_name", self.family_name),
                             ("given_name", self.given_name)):
            if "\u3000" in value or " " in value:
                raise PersonError(field, "must not contain spaces (family and given are "
                                         "separate)")
        _text("address", self.address, max_chars=MAX_ADDRESS_CHARS, empty_ok=True)
        if not isinstance(self.birth_date, dt.date) or isinstance(self.birth_date, dt.datetime):
            raise PersonError("birth_date", "must be a date")
        era_of(self.birth_date)
        if not isinstance(self.sex, Sex):
            raise PersonError("sex", f"must be one of {', '.join(s.value for s in Sex)}")
        _text("prefecture_romaji", self.prefecture_romaji, max_chars=64, ascii_only=True)
        _text("municipality_romaji", self.municipality_romaji, max_chars=64, ascii_only=True)
        code = self.municipality_code
        if not (isinstance(code, str) and len(code) == 5 and code.isascii() and code.isdigit()):
            raise PersonError("municipality_code", "must be 5 digits (全国地方公共団体コード)")

    @property
    def name(self) -> str:
        """Full name as on the card: family and given name separated by U+3000."""
        return f"{self.family_name}\u3000{self.given_name}" if self.given_name else self.family_name

    FIELDS = ("family_name", "given_name", "address", "birth_date", "sex", "prefecture_romaji",
              "municipality_romaji", "municipality_code")

    def to_mapping(self) -> dict[str, str]:
        return {"family_name": self.family_name, "given_name": self.given_name,
                "address": self.address, "birth_date": self.birth_date.isoformat(),
                "sex": self.sex.value, "prefecture_romaji": self.prefecture_romaji,
                "municipality_romaji": self.municipality_romaji,
                "municipality_code": self.municipality_code}

    @classmethod
    def from_mapping(cls, data: Any) -> Resident:
        """Decode and validate; every problem is a ``PersonError`` naming the field."""
        if not isinstance(data, Mapping):
            raise PersonError("(resident)", "must be a mapping of fields")
        for field in cls.FIELDS:
            if field not in data or data[field] is None:
                raise PersonError(field, "is required")
        unknown = sorted(set(data) - set(cls.FIELDS))
        if unknown:
            raise PersonError(str(unknown[0]), "is not a field of a resident record")
        birth = data["birth_date"]
        if isinstance(birth, str):
            try:
                birth = dt.date.fromisoformat(birth)
            except ValueError:
                raise PersonError("birth_date", "must be a date YYYY-MM-DD") from None
        try:
            sex = data["sex"] if isinstance(data["sex"], Sex) else Sex(data["sex"])
        except ValueError:
            raise PersonError("sex", f"must be one of {', '.join(s.value for s in Sex)} "
                                     "(ISO 5218)") from None
        return cls(family_name=data["family_name"], given_name=data["given_name"],
                   address=data["address"], birth_date=birth, sex=sex,
                   prefecture_romaji=data["prefecture_romaji"],
                   municipality_romaji=data["municipality_romaji"],
                   municipality_code=data["municipality_code"])

    def to_json(self) -> str:
        return json.dumps(self.to_mapping(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Resident:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise PersonError("(resident)", f"is not valid JSON ({exc})") from None
        return cls.from_mapping(data)
