"""Helpers of the shelter tests (import as ``from shelter_helpers import …``)."""

from __future__ import annotations

import datetime as dt

from helpers import TEST_TODAY, load_test_persona

from mynacard.facts.person import code_b

DESK_TIME = dt.datetime.combine(TEST_TODAY, dt.time(1, 0), tzinfo=dt.UTC)  # 10:00 JST


def persona_code_b(name: str) -> str:
    persona = load_test_persona(name)
    return code_b(persona.resident.birth_date, persona.card_expiry.year, persona.security_code)
