"""Card profiles ("personas"): who the card belongs to and how it is set up, from YAML.

Beyond who the holder is, a persona may describe the hard cases relying parties must survive:

* ``card.kind: face-auth`` — a 顔認証マイナンバーカード (issued since 2023-12-15): no PIN is set and
  no 署名用電子証明書 is issued. How the chip represents "no PIN" is not public; our choice
  (a guess, see docs/personas.md) is that every PIN key reference is blocked from issuance
  (retry limit 0), so VERIFY answers ``6984`` and an empty VERIFY ``63C0``, exactly like
  the 券面事項入力補助AP's never-set key reference. 照合番号A/B and the birth-date key still
  open the 券面 APs: shelter intake with 照合番号B works, MyKey enrolment (auth PIN) cannot.
* ``card.genuine: false`` — a counterfeit (cloned certificate): every EF a reader can get
  without a PIN is copied from the holder's genuine card (the authentication certificate, the
  券面 records signed by J-LIS, the CV certificates), but no private key could be: the chip
  holds its maker's own keys, so no challenge it signs verifies under a certified key. The
  genuine card exists in the PKI (its certificates are good); the signing certificate, which
  cannot be read without the password, is not on the counterfeit.
* ``pins.blocked: [auth, …]`` — PINs whose retry counter is at 0 when the card is handed over
  (the holder mistyped them 3 times); their limit stays the policy's.
* ``history:`` — lifecycle events after issuance, replayed through ``jpki.lifecycle`` and
  ``perso.reissue`` when the card is issued, so the PKI store (and so the CRLs and OCSP) and
  the card agree. Each entry is ``{event: EVENT, at: YYYY-MM-DD}``; ``move`` also takes
  ``address:`` (the new address). Events: ``renew`` (both certificates replaced, new
  serials), ``move`` (signing certificate revoked as affiliationChanged and replaced),
  ``loss`` (both on hold), ``found`` (held certificates revoked), ``reissue`` (after a loss),
  ``death`` (both revoked).

Every rule a persona breaks is reported as ``PersonError`` naming the field (as spelled in the
YAML, e.g. ``name.family``) and the rule; the rules of the resident record itself are
``facts.person.Resident``'s. A section given as anything but a mapping (``pins: "1234"``) is
refused, never read as absent. Face image files are read once, here: each must be a regular
file no larger than its ``MAX_IMAGE_BYTES`` bound, checked before a byte is read.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ...clock import Clock, system_clock
from ...facts.atr import ATRS, DEFAULT_ATR
from ...facts.person import (
    PersonError,
    Resident,
    Sex,
    generate_my_number,
    nth_birthday_after,
    validate_my_number,
)
from ...facts.pins import AUTH_PIN, BIRTH_KEY, CODE_A, CODE_B, FOUR_DIGITS, SIGN_PASSWORD, PinPolicy

SEXES = {"male": Sex.MALE, "female": Sex.FEMALE, "unknown": Sex.UNKNOWN,
         "not-applicable": Sex.NOT_APPLICABLE}
FOUR_DIGIT_PIN = PinPolicy("4-digit PIN", 3, FOUR_DIGITS, "exactly 4 digits")
ADULT_AGE = 18
SIGN_CERT_MIN_AGE = 15
JST = dt.timezone(dt.timedelta(hours=9), "JST")

CARD_KINDS = ("standard", "face-auth")
PIN_NAMES = ("auth", "sign", "text", "resident")
EVENTS = ("renew", "move", "loss", "found", "reissue", "death")
# The card's state before each event, as jpki.lifecycle enforces it: checked here so that a
# persona file names its own mistake instead of failing halfway through issuance.
EVENT_FROM: dict[str, tuple[str, ...]] = {
    "renew": ("active",), "move": ("active",), "loss": ("active",), "found": ("lost",),
    "reissue": ("lost", "revoked"), "death": ("active", "lost", "revoked")}
EVENT_TO = {"renew": "active", "move": "active", "loss": "lost", "found": "revoked",
            "reissue": "active", "death": "closed"}


def clock_today(clock: Clock = system_clock) -> dt.date:
    """Today in Japan by ``clock``: the date a card issued "now" carries."""
    return clock().astimezone(JST).date()


RESIDENT_FIELD_PATHS = {
    "family_name": "name.family", "given_name": "name.given", "address": "address",
    "birth_date": "birth_date", "sex": "sex", "prefecture_romaji": "municipality.prefecture",
    "municipality_romaji": "municipality.name", "municipality_code": "municipality.code",
}
"""Where each field of the resident record sits in a persona file."""


@dataclass(frozen=True, slots=True)
class Pins:
    auth: str
    sign: str
    text: str
    resident: str


@dataclass(frozen=True, slots=True)
class RetryLimits:
    """Retry limits of the card-face keys, which are not public (facts §15.1); 1-15."""

    code_a: int = CODE_A.max_tries
    code_b: int = CODE_B.max_tries
    birth: int = BIRTH_KEY.max_tries


MAX_IMAGE_BYTES = {"face.photo": 40 * 1024, "face.name": 8 * 1024, "face.address": 12 * 1024}
"""Largest image file per face field. The 券面 record (EF 0002) locates its fields through a
table of 16-bit offsets, so the whole record must stay within 65,535 bytes: these three bounds
add up to 61,440, which leaves room for the record's other fields (dates, sex, card key,
signature, security-code image: under 1 KiB). Real cards hold a photo of a few KiB."""

MAX_PERSONA_BYTES = 1024 * 1024
"""A persona file is a page of YAML; anything this large is not one."""


@dataclass(frozen=True, slots=True)
class FaceImages:
    """Card-face images as read from the persona's files (None: issuance draws placeholders
    in the right format)."""

    photo: bytes | None = None
    """顔写真: JPEG 2000 (JP2), greyscale."""
    name: bytes | None = None
    """氏名 as printed: PNG."""
    address: bytes | None = None
    """住所 as printed: PNG."""


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    """One lifecycle event after issuance (``address``: the new address of a ``move``)."""

    event: str
    at: dt.date
    address: str | None = None

    @property
    def time(self) -> dt.datetime:
        """When the event is recorded: 09:00 UTC that day, like issuance."""
        return dt.datetime.combine(self.at, dt.time(9, 0), dt.UTC)


@dataclass(frozen=True, slots=True)
class Persona:
    resident: Resident
    my_number: str
    pins: Pins
    issued: dt.date
    card_expiry: dt.date
    atr: str
    security_code: str
    card_serial: str
    retry_limits: RetryLimits = RetryLimits()
    face: FaceImages = FaceImages()
    kind: str = "standard"
    genuine: bool = True
    blocked_pins: tuple[str, ...] = ()
    history: tuple[HistoryEvent, ...] = ()

    @property
    def face_auth(self) -> bool:
        return self.kind == "face-auth"

    @property
    def current_resident(self) -> Resident:
        """The holder after every ``move`` in the history: what the chip's 基本4情報 say once
        the municipality has rewritten them (the printed face keeps the first address)."""
        resident = self.resident
        for event in self.history:
            if event.address is not None:
                resident = Resident.from_mapping({**resident.to_mapping(),
                                                  "address": event.address})
        return resident

    def age_on(self, day: dt.date) -> int:
        born = self.resident.birth_date
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))

    @property
    def gets_sign_certificate(self) -> bool:
        """署名用電子証明書 is not issued to children under 15 (facts §11.2) nor on a
        顔認証マイナンバーカード."""
        return self.age_on(self.issued) >= SIGN_CERT_MIN_AGE and not self.face_auth


def _get(data: dict[str, Any], path: str, *, required: bool = True, default: Any = None) -> Any:
    node: Any = data
    parts = path.split(".")
    for depth, part in enumerate(parts):
        if depth and not isinstance(node, dict):
            # A section of the wrong type is a mistake to report, not an absent section
            # (``pins: "1234"`` must not quietly become the default PINs).
            raise PersonError(".".join(parts[:depth]), "must be a mapping of fields")
        if part not in node or node[part] is None:
            if required:
                raise PersonError(path, "is required")
            return default
        node = node[part]
    return node


def _text(data: dict[str, Any], path: str, *, required: bool = True,
          default: str | None = None) -> str | None:
    value = _get(data, path, required=required, default=default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PersonError(path, "must be a string")
    text = str(value).strip()
    if required and not text:
        raise PersonError(path, "must not be empty")
    return text


def _date(data: dict[str, Any], path: str, *, required: bool = True) -> dt.date | None:
    value = _get(data, path, required=required)
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise PersonError(path, "must be a date YYYY-MM-DD") from None


def _pin(data: dict[str, Any], path: str, policy: PinPolicy, default: str) -> str:
    value = _text(data, path, required=False, default=default)
    assert value is not None
    if not policy.accepts(value.encode("ascii", "replace")):
        raise PersonError(path, policy.rule)
    return value


JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _read_bounded(file: Path, limit: int, field: str) -> bytes:
    """The content of the regular file ``file``, refused (``PersonError`` on ``field``) if it is
    larger than ``limit`` bytes or not a regular file."""
    try:
        # Non-blocking: opening a FIFO must not wait for a writer; the type and size are
        # checked on the open file before reading (/dev/zero never ends).
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise PersonError(field, f"cannot be read ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as stream:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise PersonError(field, "must be a regular file, not a FIFO, device or directory")
        if info.st_size > limit:
            raise PersonError(field, f"is {info.st_size} bytes; at most {limit} are accepted")
        content = stream.read(limit + 1)
    if len(content) > limit:  # the file grew after the check
        raise PersonError(field, f"is larger than {limit} bytes")
    return content


def _image(data: dict[str, Any], path: str, base: Path | None, magic: bytes,
           kind: str) -> bytes | None:
    value = _text(data, path, required=False)
    if value is None:
        return None
    file = Path(value)
    if not file.is_absolute() and base is not None:
        file = base / file
    content = _read_bounded(file, MAX_IMAGE_BYTES[path], path)
    if content[:len(magic)] != magic:
        raise PersonError(path, f"must be a {kind} file")
    return content


def _limit(data: dict[str, Any], path: str, default: int) -> int:
    value = _get(data, path, required=False, default=default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 15:
        raise PersonError(path, "must be a whole number of tries from 1 to 15")
    return value


def parse_persona(data: Any, today: dt.date | None = None, base: Path | None = None,
                  clock: Clock = system_clock) -> Persona:
    """``base``: the directory relative image paths are resolved against; ``today`` (default:
    the date in Japan by ``clock``) is the issue date of a persona that gives none."""
    if not isinstance(data, dict):
        raise PersonError("(top level)", "must be a mapping of fields")
    today = today or clock_today(clock)
    family = _text(data, "name.family")
    given = _text(data, "name.given", required=False, default="")
    for field, value in (("name.family", family), ("name.given", given)):
        if value and ("\u3000" in value or " " in value):
            raise PersonError(field, "must not contain spaces (family and given are separate)")
    birth = _date(data, "birth_date")
    assert birth is not None and family is not None
    if birth > today:
        raise PersonError("birth_date", "must not be in the future")
    sex_text = _text(data, "sex")
    if sex_text not in SEXES:
        raise PersonError("sex", f"must be one of {', '.join(SEXES)}")
    code = _text(data, "municipality.code")
    if not (code and len(code) == 5 and code.isascii() and code.isdigit()):
        raise PersonError("municipality.code", "must be 5 digits (全国地方公共団体コード)")
    try:
        resident = Resident(
            family_name=family, given_name=given or "", address=_text(data, "address") or "",
            birth_date=birth, sex=SEXES[sex_text], municipality_code=code,
            prefecture_romaji=_ascii(data, "municipality.prefecture"),
            municipality_romaji=_ascii(data, "municipality.name"))
    except PersonError as exc:
        raise PersonError(RESIDENT_FIELD_PATHS.get(exc.field, exc.field), exc.rule) from None
    number = _text(data, "my_number", required=False)
    if number is None:
        number = generate_my_number()
    else:
        try:
            validate_my_number(number)
        except PersonError as exc:
            raise PersonError("my_number", exc.rule) from None
    pins = Pins(auth=_pin(data, "pins.auth", AUTH_PIN, "1234"),
                sign=_pin(data, "pins.sign", SIGN_PASSWORD, "ABC123"),
                text=_pin(data, "pins.text", FOUR_DIGIT_PIN, "1234"),
                resident=_pin(data, "pins.resident", FOUR_DIGIT_PIN, "1234"))
    issued = _date(data, "card.issued", required=False) or today
    if issued < birth:
        raise PersonError("card.issued", "must not be before birth_date")
    adult = issued.year - birth.year - ((issued.month, issued.day) < (birth.month, birth.day)) \
        >= ADULT_AGE
    expiry = _date(data, "card.expiry", required=False) or nth_birthday_after(
        issued, birth, 10 if adult else 5)
    if expiry <= issued:
        raise PersonError("card.expiry", "must be after card.issued")
    atr = _text(data, "card.atr", required=False, default=DEFAULT_ATR)
    if atr not in ATRS:
        raise PersonError("card.atr", f"must be one of {', '.join(ATRS)}")
    security_code = _text(data, "card.security_code", required=False, default="0000")
    if not (security_code and len(security_code) == 4 and security_code.isdigit()):
        raise PersonError("card.security_code", "must be 4 digits")
    serial = _text(data, "card.serial", required=False, default=f"4{number[:14]:0<14}")
    if not (serial and len(serial) == 15 and serial.isascii() and serial.isdigit()):
        raise PersonError("card.serial", "must be 15 digits")
    limits = RetryLimits(code_a=_limit(data, "card.retry_limits.code_a", CODE_A.max_tries),
                         code_b=_limit(data, "card.retry_limits.code_b", CODE_B.max_tries),
                         birth=_limit(data, "card.retry_limits.birth", BIRTH_KEY.max_tries))
    face = FaceImages(photo=_image(data, "face.photo", base, JP2_SIGNATURE, "JPEG 2000 (JP2)"),
                      name=_image(data, "face.name", base, PNG_SIGNATURE, "PNG"),
                      address=_image(data, "face.address", base, PNG_SIGNATURE, "PNG"))
    kind = _text(data, "card.kind", required=False, default="standard")
    if kind not in CARD_KINDS:
        raise PersonError("card.kind", f"must be one of {', '.join(CARD_KINDS)}")
    if kind == "face-auth" and data.get("pins") is not None:
        raise PersonError("pins", "must be absent: a face-auth card has no PIN set")
    genuine = _get(data, "card.genuine", required=False, default=True)
    if not isinstance(genuine, bool):
        raise PersonError("card.genuine", "must be true or false")
    blocked = _blocked_pins(data, kind)
    history = _history(data, resident, issued, expiry, today)
    if not genuine and history:
        raise PersonError("history", "must be empty on a counterfeit (card.genuine: false): "
                                     "only the genuine card has a PKI history")
    return Persona(resident, number, pins, issued, expiry, atr, security_code, serial,
                   limits, face, kind, genuine, blocked, history)


def _blocked_pins(data: dict[str, Any], kind: str) -> tuple[str, ...]:
    value = _get(data, "pins.blocked", required=False, default=[])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PersonError("pins.blocked", f"must be a list of PIN names ({', '.join(PIN_NAMES)})")
    for name in value:
        if name not in PIN_NAMES:
            raise PersonError("pins.blocked", f"{name!r} is not one of {', '.join(PIN_NAMES)}")
    if len(set(value)) != len(value):
        raise PersonError("pins.blocked", "must not name a PIN twice")
    return tuple(value)


def _history(data: dict[str, Any], resident: Resident, issued: dt.date, expiry: dt.date,
             today: dt.date) -> tuple[HistoryEvent, ...]:
    entries = data.get("history")
    if entries is None:
        return ()
    if not isinstance(entries, list):
        raise PersonError("history", "must be a list of {event, at} entries")
    events: list[HistoryEvent] = []
    state, previous = "active", issued
    for n, entry in enumerate(entries):
        where = f"history[{n}]"
        if not isinstance(entry, dict):
            raise PersonError(where, "must be a mapping with event and at")
        unknown = sorted(set(entry) - {"event", "at", "address"})
        if unknown:
            raise PersonError(f"{where}.{unknown[0]}", "is not a field of a history entry")
        event = _text(entry, "event", required=False)
        if event not in EVENTS:
            raise PersonError(f"{where}.event", f"must be one of {', '.join(EVENTS)}")
        try:
            at = _date(entry, "at")
        except PersonError as exc:
            raise PersonError(f"{where}.at", exc.rule) from None
        assert at is not None
        if at < previous:
            raise PersonError(f"{where}.at", "must not be before card.issued or the event "
                                             "before it")
        if at > today:
            raise PersonError(f"{where}.at", "must not be in the future")
        if at >= expiry:
            raise PersonError(f"{where}.at", "must be before card.expiry")
        if state not in EVENT_FROM[event]:
            raise PersonError(f"{where}.event",
                              f"{event} cannot happen to a {state} card (allowed from: "
                              f"{', '.join(EVENT_FROM[event])})")
        address = _text(entry, "address", required=False)
        if event == "move":
            if not address:
                raise PersonError(f"{where}.address", "is required for a move")
            try:
                Resident.from_mapping({**resident.to_mapping(), "address": address})
            except PersonError as exc:
                raise PersonError(f"{where}.address", exc.rule) from None
        elif address is not None:
            raise PersonError(f"{where}.address", "is only for a move")
        events.append(HistoryEvent(event, at, address))
        state, previous = EVENT_TO[event], at
    return tuple(events)


def _ascii(data: dict[str, Any], path: str) -> str:
    value = _text(data, path)
    assert value is not None
    if not value.isascii():
        raise PersonError(path, "must be romaji (ASCII), e.g. Kiyose-shi")
    return value


def load_persona(path: Path | str, today: dt.date | None = None,
                 clock: Clock = system_clock) -> Persona:
    path = Path(path)
    try:
        data = yaml.safe_load(_read_bounded(path, MAX_PERSONA_BYTES, str(path)).decode("utf-8"))
    except UnicodeDecodeError:
        raise PersonError(str(path), "must be UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise PersonError(str(path), f"is not valid YAML ({exc})") from None
    except RecursionError:  # nesting no persona needs: the parser gives up on the stack
        raise PersonError(str(path), "is nested too deeply to be a persona") from None
    return parse_persona(data, today, base=path.parent, clock=clock)
