"""Card profiles ("personas"): who the card belongs to and how it is set up, from YAML.

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

    def age_on(self, day: dt.date) -> int:
        born = self.resident.birth_date
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))

    @property
    def gets_sign_certificate(self) -> bool:
        """署名用電子証明書 is not issued to children under 15 (facts §11.2)."""
        return self.age_on(self.issued) >= SIGN_CERT_MIN_AGE


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


def parse_persona(data: Any, today: dt.date | None = None, base: Path | None = None) -> Persona:
    """``base``: the directory relative image paths are resolved against."""
    if not isinstance(data, dict):
        raise PersonError("(top level)", "must be a mapping of fields")
    today = today or dt.date.today()
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
    return Persona(resident, number, pins, issued, expiry, atr, security_code, serial,
                   limits, face)


def _ascii(data: dict[str, Any], path: str) -> str:
    value = _text(data, path)
    assert value is not None
    if not value.isascii():
        raise PersonError(path, "must be romaji (ASCII), e.g. Kiyose-shi")
    return value


def load_persona(path: Path | str, today: dt.date | None = None) -> Persona:
    path = Path(path)
    try:
        data = yaml.safe_load(_read_bounded(path, MAX_PERSONA_BYTES, str(path)).decode("utf-8"))
    except UnicodeDecodeError:
        raise PersonError(str(path), "must be UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise PersonError(str(path), f"is not valid YAML ({exc})") from None
    except RecursionError:  # nesting no persona needs: the parser gives up on the stack
        raise PersonError(str(path), "is nested too deeply to be a persona") from None
    return parse_persona(data, today, base=path.parent)
