"""Japanese eras (元号) as the card and the JPKI profile encode them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


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
    raise ValueError(f"{day} is before the Meiji era")


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
