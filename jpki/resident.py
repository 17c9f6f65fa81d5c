"""The resident record (基本4情報 and residence) that certificates are issued from."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import Enum


class Sex(Enum):
    """JIS X 0303 / ISO 5218 codes as the card and the certificate carry them."""

    UNKNOWN = "0"
    MALE = "1"
    FEMALE = "2"
    NOT_APPLICABLE = "9"


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

    @property
    def name(self) -> str:
        """Full name as on the card: family and given name separated by U+3000."""
        return f"{self.family_name}\u3000{self.given_name}" if self.given_name else self.family_name
