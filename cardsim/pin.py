"""PIN (key reference) policies: retry limits and the format rules for new values."""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PinPolicy:
    label: str
    max_tries: int
    pattern: str
    """Full-match regular expression a new value must satisfy (CHANGE REFERENCE DATA, issuance)."""
    rule: str
    """The rule in words, for error messages."""

    def accepts(self, value: bytes) -> bool:
        try:
            text = value.decode("ascii")
        except UnicodeDecodeError:
            return False
        return re.fullmatch(self.pattern, text) is not None


def pin_matches(presented: bytes, reference: bytes) -> bool:
    """Constant-time comparison: the time taken does not depend on where the values differ."""
    return hmac.compare_digest(presented, reference)


FOUR_DIGITS = r"[0-9]{4}"

AUTH_PIN = PinPolicy("利用者証明用暗証番号 (user-authentication PIN)", 3, FOUR_DIGITS,
                     "exactly 4 digits")
SIGN_PASSWORD = PinPolicy(
    "署名用電子証明書パスワード (signing password)", 5,
    r"(?=[A-Z0-9]*[A-Z])(?=[A-Z0-9]*[0-9])[A-Z0-9]{6,16}",
    "6-16 characters of A-Z and 0-9 with at least one letter and one digit")
