"""The 12-digit individual number (個人番号) and its check digit."""

from __future__ import annotations

import secrets


class InvalidMyNumber(ValueError):
    """Not 12 digits, or a wrong check digit."""


def check_digit(first_eleven: str) -> int:
    """Check digit per the 番号法施行令 §8 formula (weights 2-7, 2-6 from the right, mod 11)."""
    if len(first_eleven) != 11 or not first_eleven.isascii() or not first_eleven.isdigit():
        raise InvalidMyNumber("the base of a My Number is 11 ASCII digits")
    total = 0
    for n, digit in enumerate(reversed(first_eleven), start=1):
        weight = n + 1 if n <= 6 else n - 5
        total += int(digit) * weight
    remainder = total % 11
    return 0 if remainder <= 1 else 11 - remainder


def validate(number: str) -> str:
    if len(number) != 12 or not number.isascii() or not number.isdigit():
        raise InvalidMyNumber(f"a My Number is 12 ASCII digits, got {number!r}")
    if check_digit(number[:11]) != int(number[11]):
        raise InvalidMyNumber(f"check digit of {number} should be {check_digit(number[:11])}")
    return number


def generate() -> str:
    base = f"{secrets.randbelow(10**11):011d}"
    return base + str(check_digit(base))
