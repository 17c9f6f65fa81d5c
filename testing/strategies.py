"""Hypothesis strategies for card applications: personas, PINs and passwords (valid, and invalid
by each rule), wrong-PIN sequences, command APDUs (well-formed and malformed), lifecycle event
sequences and CRL contents.

Personas come out as mappings of persona fields (what a persona YAML file holds), ready for
``card_factory(persona)`` or ``Harness.card(persona)``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography import x509
from hypothesis import strategies as st

from ..facts.person import ERAS, MAX_ADDRESS_CHARS, my_number_check_digit
from ..facts.pins import AUTH_PIN, SIGN_PASSWORD, PinPolicy
from ..jpki.publish import RevokedEntry

# -- personas ---------------------------------------------------------------------------------

MUNICIPALITIES = (
    ("13221", "Tokyo-to", "Kiyose-shi", "東京都清瀬市"),
    ("27127", "Osaka-fu", "Osaka-shi Kita-ku", "大阪府大阪市北区"),
    ("01217", "Hokkaido", "Ebetsu-shi", "北海道江別市"),
    ("17201", "Ishikawa-ken", "Kanazawa-shi", "石川県金沢市"),
    ("47201", "Okinawa-ken", "Naha-shi", "沖縄県那覇市"),
)
"""(全国地方公共団体コード, prefecture and municipality in romaji, both in kanji)."""

KANJI = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
HIRAGANA = st.characters(min_codepoint=0x3041, max_codepoint=0x3096)
KATAKANA = st.characters(min_codepoint=0x30A1, max_codepoint=0x30FA)
FULLWIDTH_DIGITS = st.sampled_from("０１２３４５６７８９")
ALPHABET = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ")

RECORD_SHORT_FORM_MAX = 127
"""A BER length above this needs the long form: a record whose value passes it is the case
naive parsers get wrong."""
LONG_ADDRESS_MIN_CHARS = RECORD_SHORT_FORM_MAX // 3 + 1
"""Full-width characters are 3 bytes of UTF-8: this many make the address alone pass 127."""

CHILD_AGE_LIMIT = 15
"""Under 15 at issuance: no signing certificate, a card valid until the 5th birthday."""


def kanji_names() -> st.SearchStrategy[tuple[str, str]]:
    """(family, given) in kanji, 1-4 characters each."""
    return st.tuples(st.text(KANJI, min_size=1, max_size=4), st.text(KANJI, min_size=1, max_size=4))


def kana_names() -> st.SearchStrategy[tuple[str, str]]:
    """(family, given) in hiragana or katakana."""
    kana = st.one_of(st.text(HIRAGANA, min_size=1, max_size=6),
                     st.text(KATAKANA, min_size=1, max_size=6))
    return st.tuples(kana, kana)


def alphabet_names() -> st.SearchStrategy[tuple[str, str]]:
    """(family, given) in capital letters, as foreign residents' names are registered."""
    return st.tuples(st.text(ALPHABET, min_size=2, max_size=16),
                     st.text(ALPHABET, min_size=2, max_size=16))


def addresses(min_chars: int = 0) -> st.SearchStrategy[str]:
    """A prefecture and municipality in kanji, then 町名, block numbers and a building name;
    at least ``min_chars`` characters (at most ``MAX_ADDRESS_CHARS``)."""
    prefix = st.sampled_from([m[3] for m in MUNICIPALITIES])
    rest = st.text(st.one_of(KANJI, KATAKANA, FULLWIDTH_DIGITS, st.just("－")),
                   min_size=1, max_size=MAX_ADDRESS_CHARS - 8)
    return st.builds(lambda p, r: (p + r)[:MAX_ADDRESS_CHARS], prefix, rest).filter(
        lambda a: len(a) >= min_chars)


def long_addresses() -> st.SearchStrategy[str]:
    """Addresses whose UTF-8 alone passes 127 bytes, so every record carrying them does."""
    prefix = st.sampled_from([m[3] for m in MUNICIPALITIES])
    rest = st.text(st.one_of(KANJI, KATAKANA, FULLWIDTH_DIGITS, st.just("－")),
                   min_size=LONG_ADDRESS_MIN_CHARS, max_size=MAX_ADDRESS_CHARS - 8)
    return st.builds(lambda p, r: p + r, prefix, rest)


ERA_BOUNDARY_DATES = tuple(sorted(
    [era.first_day for era in ERAS] + [era.first_day - dt.timedelta(days=1) for era in ERAS[1:]]))
"""The first day of every era (明治 to 令和) and the last day of the one before."""


def era_boundary_dates() -> st.SearchStrategy[dt.date]:
    """One of ``ERA_BOUNDARY_DATES``."""
    return st.sampled_from(ERA_BOUNDARY_DATES)


def leap_day_births(earliest: int = 1904, latest: int = 2024) -> st.SearchStrategy[dt.date]:
    """29 February of a leap year (1900 was not one)."""
    years = [y for y in range(earliest, latest + 1)
             if y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)]
    return st.sampled_from(years).map(lambda y: dt.date(y, 2, 29))


def my_numbers() -> st.SearchStrategy[str]:
    """Valid 12-digit My Numbers (check digit per 番号法施行令 §8)."""
    return st.text(st.sampled_from("0123456789"), min_size=11, max_size=11).map(
        lambda base: base + str(my_number_check_digit(base)))


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


@st.composite
def personas(draw: st.DrawFn, today: dt.date | None = None,
             kind: str | None = None) -> dict[str, Any]:
    """A persona mapping of one ``kind`` (default: any of them):

    ``kanji`` / ``kana`` names, ``long-address`` (a 4-facts record over 127 bytes),
    ``era-boundary`` and ``leap-day`` births, ``child`` (under 15 when issued: no signing
    certificate), ``foreign`` (a foreign resident with an alphabet name).

    The card is issued within the two years before ``today`` (default: the date now).
    """
    today = today or dt.date.today()
    kind = kind or draw(st.sampled_from(PERSONA_KINDS))
    if kind not in PERSONA_KINDS:
        raise ValueError(f"unknown persona kind {kind!r}: use one of {', '.join(PERSONA_KINDS)}")
    issued = today - dt.timedelta(days=draw(st.integers(0, 730)))
    names = {"kana": kana_names(), "foreign": alphabet_names()}.get(kind, kanji_names())
    family, given = draw(names)
    if kind == "era-boundary":
        birth = draw(era_boundary_dates())
    elif kind == "leap-day":
        birth = draw(leap_day_births(latest=issued.year - 1))
    elif kind == "child":
        earliest = _years_before(issued, CHILD_AGE_LIMIT) + dt.timedelta(days=1)
        birth = draw(st.dates(earliest, issued))
    else:
        birth = draw(st.dates(dt.date(1930, 1, 1), _years_before(issued, 18)))
    code, prefecture, municipality, _ = draw(st.sampled_from(MUNICIPALITIES))
    address = draw(long_addresses() if kind == "long-address" else addresses(min_chars=6))
    auth = draw(valid_pins(AUTH_PIN))
    return {
        "name": {"family": family, "given": given},
        "address": address,
        "birth_date": birth,
        "sex": draw(st.sampled_from(["male", "female", "unknown", "not-applicable"])),
        "my_number": draw(my_numbers()),
        "municipality": {"code": code, "prefecture": prefecture, "name": municipality},
        "pins": {"auth": auth, "sign": draw(valid_pins(SIGN_PASSWORD)), "text": auth,
                 "resident": draw(valid_pins(AUTH_PIN))},
        "card": {"issued": issued, "security_code": draw(st.from_regex(r"[0-9]{4}",
                                                                       fullmatch=True))},
    }


PERSONA_KINDS = ("kanji", "kana", "long-address", "era-boundary", "leap-day", "child", "foreign")


# -- PINs and passwords -----------------------------------------------------------------------

DIGITS = "0123456789"
PASSWORD_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_DIGITS_RULE = re.compile(r"\[0-9\]\{(\d+)\}")
PASSWORD_MIN, PASSWORD_MAX = 6, 16


def _digit_count(policy: PinPolicy) -> int | None:
    match = _DIGITS_RULE.fullmatch(policy.pattern)
    return int(match.group(1)) if match else None


def _unsupported(policy: PinPolicy) -> ValueError:
    return ValueError(f"no PIN strategies for {policy.label}: its rule is "
                      f"{policy.rule!r} (supported: n digits, the signing password)")


def valid_pins(policy: PinPolicy = AUTH_PIN) -> st.SearchStrategy[str]:
    """Values the policy accepts as a new PIN (``facts.pins``: 4 digits, the 6-16 character
    signing password, the 12/14/6-digit card-face keys)."""
    count = _digit_count(policy)
    if count is not None:
        return st.text(st.sampled_from(DIGITS), min_size=count, max_size=count)
    if policy.pattern == SIGN_PASSWORD.pattern:
        # A letter and a digit somewhere among 4-14 more password characters.
        return st.builds(lambda letter, digit, rest, at: rest[:at] + letter + digit + rest[at:],
                         st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), st.sampled_from(DIGITS),
                         st.text(st.sampled_from(PASSWORD_CHARS), min_size=PASSWORD_MIN - 2,
                                 max_size=PASSWORD_MAX - 2),
                         st.integers(0, PASSWORD_MAX - 2))
    raise _unsupported(policy)


def pin_violations(policy: PinPolicy = AUTH_PIN) -> dict[str, st.SearchStrategy[str]]:
    """One strategy per rule of the policy, each producing values that break that rule."""
    count = _digit_count(policy)
    ascii_non_digits = st.characters(min_codepoint=0x20, max_codepoint=0x7E).filter(
        lambda c: c not in DIGITS)
    if count is not None:
        digits = st.sampled_from(DIGITS)
        return {
            "too short": st.text(digits, min_size=1, max_size=count - 1),
            "too long": st.text(digits, min_size=count + 1, max_size=count + 8),
            "not only digits": st.builds(
                lambda text, bad, at: text[:at] + bad + text[at + 1:],
                st.text(digits, min_size=count, max_size=count),
                st.one_of(ascii_non_digits, FULLWIDTH_DIGITS), st.integers(0, count - 1)),
        }
    if policy.pattern == SIGN_PASSWORD.pattern:
        letters = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        return {
            "too short": st.text(st.sampled_from(PASSWORD_CHARS), min_size=1,
                                 max_size=PASSWORD_MIN - 1),
            "too long": valid_pins(SIGN_PASSWORD).flatmap(
                lambda ok: st.text(st.sampled_from(PASSWORD_CHARS),
                                   min_size=PASSWORD_MAX + 1 - len(ok),
                                   max_size=PASSWORD_MAX + 8 - len(ok)).map(
                                       lambda more: ok + more)),
            "no digit": st.text(letters, min_size=PASSWORD_MIN, max_size=PASSWORD_MAX),
            "no letter": st.text(st.sampled_from(DIGITS), min_size=PASSWORD_MIN,
                                 max_size=PASSWORD_MAX),
            "lower case or other characters": st.builds(
                lambda ok, bad, at: ok[:at] + bad + ok[at + 1:], valid_pins(SIGN_PASSWORD),
                st.characters(min_codepoint=0x20, max_codepoint=0x7E).filter(
                    lambda c: c not in PASSWORD_CHARS), st.integers(0, PASSWORD_MIN - 1)),
        }
    raise _unsupported(policy)


def invalid_pins(policy: PinPolicy = AUTH_PIN) -> st.SearchStrategy[str]:
    """Values the policy refuses, breaking any one of its rules."""
    return st.one_of(*pin_violations(policy).values())


def wrong_pins(right: str, policy: PinPolicy = AUTH_PIN) -> st.SearchStrategy[str]:
    """Well-formed PINs that are not ``right`` (what a holder mistypes)."""
    return valid_pins(policy).filter(lambda pin: pin != right)


def pin_attempts(right: str, policy: PinPolicy = AUTH_PIN,
                 max_size: int = 12) -> st.SearchStrategy[list[str]]:
    """What a holder types at successive VERIFYs: wrong PINs, sometimes the right one."""
    return st.lists(st.one_of(wrong_pins(right, policy), st.just(right)), min_size=1,
                    max_size=max_size)


def wrong_pin_sequences(right: str, policy: PinPolicy = AUTH_PIN) -> st.SearchStrategy[list[str]]:
    """Only wrong PINs, from one short of the retry limit to past it: the lockout boundary."""
    return st.lists(wrong_pins(right, policy), min_size=max(policy.max_tries - 1, 1),
                    max_size=policy.max_tries + 2)


def expected_tries_left(attempts: Sequence[str], right: str, max_tries: int) -> list[int]:
    """The retry counter after each attempt: a wrong PIN costs a try, the right one restores
    them all; at 0 the PIN is blocked and even the right one is refused (``6984``)."""
    tries, after = max_tries, []
    for attempt in attempts:
        if tries > 0:
            tries = max_tries if attempt == right else tries - 1
        after.append(tries)
    return after


# -- command APDUs ----------------------------------------------------------------------------

def _header() -> st.SearchStrategy[bytes]:
    # CLA FF is reserved for PPS; INS 6X and 9X are invalid (ISO/IEC 7816-3 T=0).
    ins = st.integers(0, 0xFF).filter(lambda i: i >> 4 not in (0x6, 0x9))
    return st.builds(lambda cla, i, p1, p2: bytes((cla, i, p1, p2)), st.integers(0, 0xFE), ins,
                     st.integers(0, 0xFF), st.integers(0, 0xFF))


def command_apdus(max_data: int = 300) -> st.SearchStrategy[bytes]:
    """Well-formed command APDUs of every ISO/IEC 7816-4 case: 1, 2S, 3S, 4S, 2E, 3E, 4E."""
    short_data = st.binary(min_size=1, max_size=min(255, max_data))
    long_data = st.binary(min_size=1, max_size=max(max_data, 1))
    short_le = st.integers(0, 0xFF).map(lambda le: bytes((le,)))
    ext_le = st.integers(0, 0xFFFF).map(lambda le: le.to_bytes(2, "big"))
    return st.one_of(
        _header(),
        st.builds(lambda h, le: h + le, _header(), short_le),
        st.builds(lambda h, d: h + bytes((len(d),)) + d, _header(), short_data),
        st.builds(lambda h, d, le: h + bytes((len(d),)) + d + le, _header(), short_data, short_le),
        st.builds(lambda h, le: h + b"\x00" + le, _header(), ext_le),
        st.builds(lambda h, d: h + b"\x00" + len(d).to_bytes(2, "big") + d, _header(), long_data),
        st.builds(lambda h, d, le: h + b"\x00" + len(d).to_bytes(2, "big") + d + le,
                  _header(), long_data, ext_le),
    )


def malformed_apdus() -> st.SearchStrategy[bytes]:
    """Byte strings no case of ISO/IEC 7816-4 reads: shorter than a header, a short Lc that
    disagrees with the length, a truncated extended length, an extended Lc of zero followed by
    data, an extended Lc that disagrees with the length."""
    def short_lc_mismatch(h: bytes, lc: int, body: bytes) -> bytes:
        return h + bytes((lc,)) + body

    return st.one_of(
        st.binary(max_size=3),
        # A body of at least one byte: header + one byte alone is case 2S.
        st.builds(short_lc_mismatch, _header(), st.integers(1, 0xFF),
                  st.binary(min_size=1, max_size=300))
        .filter(lambda raw: len(raw) - 5 not in (raw[4], raw[4] + 1)),
        _header().map(lambda h: h + b"\x00\x00"),
        st.builds(lambda h, d: h + b"\x00\x00\x00" + d, _header(), st.binary(min_size=1,
                                                                                max_size=40))
        .filter(lambda raw: len(raw) != 9),
        st.builds(lambda h, lc, d: h + b"\x00" + lc.to_bytes(2, "big") + d, _header(),
                  st.integers(1, 0xFFFF), st.binary(min_size=1, max_size=300))
        .filter(lambda raw: len(raw) - 7 not in (int.from_bytes(raw[5:7], "big"),
                                                 int.from_bytes(raw[5:7], "big") + 2)),
    )


# -- lifecycle event sequences ----------------------------------------------------------------

LIFECYCLE_EVENTS = ("issue", "renew", "move", "loss", "found", "death", "expiry")
LIFECYCLE_TRANSITIONS: Mapping[str, tuple[str, ...]] = {
    # state: events that may happen next (jpki.lifecycle refuses the others)
    "new": ("issue",),
    "active": ("renew", "move", "loss", "death", "expiry"),
    "lost": ("found", "death"),
    "found": ("death",),
    "expired": ("death",),
    "dead": (),
}
STATE_AFTER = {"issue": "active", "renew": "active", "move": "active", "loss": "lost",
               "found": "found", "death": "dead", "expiry": "expired"}


@st.composite
def lifecycle_events(draw: st.DrawFn, max_size: int = 8) -> list[str]:
    """A card's life as events in an order real life allows: ``issue`` first, ``found`` only
    after ``loss``, nothing after ``death``, after ``expiry`` only ``death``."""
    events, state = [], "new"
    while len(events) < max_size and LIFECYCLE_TRANSITIONS[state]:
        if events and not draw(st.booleans()):
            break
        event = draw(st.sampled_from(LIFECYCLE_TRANSITIONS[state]))
        events.append(event)
        state = STATE_AFTER[event]
    return events


# -- CRL contents -----------------------------------------------------------------------------

CRL_REASONS = tuple(r for r in x509.ReasonFlags if r is not x509.ReasonFlags.remove_from_crl)
"""Reasons a complete CRL may give (removeFromCRL belongs to delta CRLs only)."""


def crl_entries(min_size: int = 0, max_size: int = 20,
                around: dt.datetime | None = None) -> st.SearchStrategy[list[RevokedEntry]]:
    """Entries for ``jpki.publish.sign_crl``: distinct positive serials (up to 20 octets),
    revocation dates to the second within a year before ``around`` (default now), any reason
    but removeFromCRL, sometimes an invalidity date before the revocation."""
    around = (around or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    seconds = st.integers(0, 365 * 86400).map(lambda s: around - dt.timedelta(seconds=s))

    def entry(serial: int, when: dt.datetime, reason: x509.ReasonFlags,
              earlier: int | None) -> RevokedEntry:
        invalidity = when - dt.timedelta(seconds=earlier) if earlier is not None else None
        return RevokedEntry(serial, when, reason, invalidity)

    entries = st.builds(entry, st.integers(1, 2**159 - 1), seconds, st.sampled_from(CRL_REASONS),
                        st.none() | st.integers(0, 30 * 86400))
    return st.lists(entries, min_size=min_size, max_size=max_size,
                    unique_by=lambda e: e.serial)
