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

TEXT_PIN = PinPolicy("券面事項入力補助用暗証番号 (card-info input-support PIN)", 3, FOUR_DIGITS,
                     "exactly 4 digits")
RESIDENT_PIN = PinPolicy("住民基本台帳用暗証番号 (resident-registry PIN)", 3, FOUR_DIGITS,
                         "exactly 4 digits")

# The retry limits of the three card-face keys are not public (facts §15.1). Ten is our
# choice: generous enough for typing from the card face, still a lockout. A persona's
# card.retry_limits overrides them per card (the limit lives in the card image).
CODE_A = PinPolicy("照合番号A (the 12-digit 個人番号)", 10, r"[0-9]{12}", "exactly 12 digits")
CODE_B = PinPolicy("照合番号B (birth YYMMDD in era years, expiry year, security code)", 10,
                   r"[0-9]{14}", "exactly 14 digits")
BIRTH_KEY = PinPolicy("生年月日 key (birth YYMMDD in era years)", 10, r"[0-9]{6}",
                      "exactly 6 digits")
BLOCKED_AT_ISSUANCE = PinPolicy("key reference blocked at issuance", 0, r"(?!)",
                                "can never be set")
