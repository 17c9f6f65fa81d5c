"""The shelter's card paths (municipal-apps.md §4.2), all through the reader layer:

* **照合番号B (default, PIN-less, offline):** staff type the birth date (era), the card's expiry
  year and the 4-digit security code from the card face. :func:`code_b_from_face` /
  :func:`check_code_b` validate it locally first, so a typo never spends one of the card's
  tries; :class:`CodeBGuard` stops a blind retry after one failure and asks for a re-read.
  Then ``client.text.TextClient`` reads the 4 facts and checks the integrity chain (EF 0003
  digests, its signature, the EF 0004 CV certificate, the root) and the chip's key (EF 0007,
  challenge–response). 照合番号B does not open EF 0001: no My Number is read, by construction.
* **PIN (券面事項入力補助 PIN):** the same read with the PIN; EF 0001 is still not selected.
* **Tap (かざし, §38の4):** a resident enrolled earlier with the PIN (``enrol_for_tap``) is
  recognised by the authentication certificate (``client.recipes.tap_check``).
* **No card:** :func:`manual_facts`, marked unverified.
* **Municipal disaster mode:** :func:`read_with_my_number` (PIN) also reads the My Number;
  only a service configured with a legal basis calls it, and the roster keeps it apart.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ...client.commands import CardCommandError, CardDataError, PinBlockedError, WrongPinError
from ...client.records import TamperedError
from ...client.text import TextClient, TextData
from ...facts.person import ERAS, MAX_ADDRESS_CHARS, MAX_NAME_CHARS, Era, era_yymmdd
from ...readers.base import CardConnection, ReaderError
from .model import Facts, ShelterError, Source

FIRST_CARD_EXPIRY_YEAR = 2016
"""No card expires before its issue: the first cards were issued in January 2016."""
MAX_VALIDITY_YEARS = 11
"""An adult card runs to the 10th birthday after issue, so at most 11 calendar years ahead."""

REREAD = ("カード券面をもう一度読み取ってください（生年月日・有効期限の年・セキュリティコード）。"
          "Re-read the card face (birth date, expiry year, security code) before trying again.")
MANUAL_NEXT = ("手入力で受付し「未確認」として記録してください。"
               "Check the person in by hand; the record is marked unverified.")


class CodeBFormatError(ShelterError):
    """The typed 照合番号B cannot be right: caught before the card is touched."""


class CardRefused(ShelterError):
    """The card path failed; ``reason`` for programs, the message tells staff what to do."""

    def __init__(self, reason: str, message: str, *, tries_left: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.tries_left = tries_left


def era_by_name(name: str) -> Era:
    for era in ERAS:
        if name in (era.name, era.romaji.lower(), era.romaji):
            return era
    raise CodeBFormatError(f"元号が不明です: {name!r} (明治・大正・昭和・平成・令和)")


def birth_from_face(era_name: str, era_year: int, month: int, day: int,
                    today: dt.date) -> dt.date:
    """The Gregorian birth date printed on the card face as 元号 年 月 日, validated."""
    era = era_by_name(era_name)
    try:
        date = dt.date(era.first_day.year + era_year - 1, month, day)
    except ValueError:
        raise CodeBFormatError(f"生年月日が正しくありません: {era.name}{era_year}年{month}月{day}日"
                               " (no such date)") from None
    following = [e.first_day for e in ERAS if e.first_day > era.first_day]
    if era_year < 1 or date < era.first_day or (following and date >= following[0]):
        raise CodeBFormatError(f"{era.name}{era_year}年{month}月{day}日 は{era.name}の期間外です "
                               "(not within that era)")
    if date > today:
        raise CodeBFormatError("生年月日が未来の日付です (birth date in the future)")
    return date


def _check_expiry_and_code(expiry_year: int, security_code: str, today: dt.date) -> None:
    latest = today.year + MAX_VALIDITY_YEARS
    if not FIRST_CARD_EXPIRY_YEAR <= expiry_year <= latest:
        raise CodeBFormatError(f"有効期限の年 {expiry_year} はありえません "
                               f"({FIRST_CARD_EXPIRY_YEAR}〜{latest} の西暦年)")
    if len(security_code) != 4 or not security_code.isascii() or not security_code.isdigit():
        raise CodeBFormatError("セキュリティコードは4桁の数字です (4 digits)")


def code_b_from_face(era_name: str, era_year: int, month: int, day: int, expiry_year: int,
                     security_code: str, today: dt.date) -> str:
    """照合番号B from what staff read off the card face, or CodeBFormatError."""
    birth = birth_from_face(era_name, era_year, month, day, today)
    _check_expiry_and_code(expiry_year, security_code, today)
    return f"{era_yymmdd(birth)}{expiry_year:04d}{security_code}"


def check_code_b(code: str, today: dt.date) -> str:
    """A 14-digit 照合番号B typed whole: its YYMMDD must be a real date in some era (not in the
    future), its year a plausible expiry, the rest 4 digits."""
    code = code.strip()
    if len(code) != 14 or not code.isascii() or not code.isdigit():
        raise CodeBFormatError("照合番号Bは14桁の数字です (birth YYMMDD, expiry YYYY, code)")
    yy, mm, dd = int(code[0:2]), int(code[2:4]), int(code[4:6])
    possible = []
    for era in ERAS:
        try:
            possible.append(birth_from_face(era.name, yy, mm, dd, today))
        except CodeBFormatError:
            continue
    if not possible:
        raise CodeBFormatError(f"生年月日 {code[:6]} はどの元号でも正しい日付になりません")
    _check_expiry_and_code(int(code[6:10]), code[10:], today)
    return code


class CodeBGuard:
    """One card at the desk: at most one wrong 照合番号B goes to the card before staff re-read
    the face, and never the same wrong value twice. The retry limit of 照合番号B is not public
    (facts §15), so no try is spent blindly. ``next_card`` starts over for the next person."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def next_card(self) -> None:
        self.failed.clear()

    def allow(self, code: str) -> None:
        if code in self.failed:
            raise CardRefused("same-code-b", "前回と同じ照合番号Bです: カードに送っていません。"
                              + REREAD)
        if len(self.failed) >= 2:
            raise CardRefused("code-b-stop", "照合番号Bが2回一致しませんでした: これ以上"
                              "試しません。暗証番号で読むか、" + MANUAL_NEXT)

    def failed_with(self, code: str) -> None:
        self.failed.append(code)


def _refusal(exc: Exception, credential: str) -> CardRefused:
    if isinstance(exc, WrongPinError):
        return CardRefused("wrong-" + credential,
                           f"{'照合番号B' if credential == 'code-b' else '暗証番号'}が一致しません"
                           f"（残り{exc.tries_left}回）。" + (REREAD if credential == "code-b"
                                                         else "本人に確認してください。"),
                           tries_left=exc.tries_left)
    if isinstance(exc, PinBlockedError):
        return CardRefused(credential + "-blocked",
                           f"{'照合番号B' if credential == 'code-b' else '暗証番号'}はロックされて"
                           "います。別の方法（照合番号B・暗証番号）で読むか、" + MANUAL_NEXT)
    if isinstance(exc, TamperedError):
        return CardRefused("not-verified",
                           "カードの情報を確認できません（改ざん・偽造の疑い）。" + MANUAL_NEXT
                           + " カードは責任者に報告してください (report the card to the shelter "
                           f"lead). Detail: {exc}")
    return CardRefused("card-error", "カードを読み取れませんでした。カードを置き直してもう一度"
                       "読んでください。続く場合は" + MANUAL_NEXT + f" Detail: {exc}")


def _facts(data: TextData, source: Source) -> Facts:
    four = data.basic_four
    if four is None:  # TextClient always reads the 4 facts with PIN or 照合番号B
        raise CardRefused("card-error", "基本4情報が読めませんでした。" + MANUAL_NEXT)
    return Facts(four.name, four.address, four.birth_date, four.sex, source, True, data.issuer)


_CARD_ERRORS = (CardCommandError, CardDataError, TamperedError, ReaderError)


def read_code_b(connection: CardConnection, code_b: str, anchors: dict[Any, Any]) -> Facts:
    """The default path: 4 facts by 照合番号B, chain and chip checked, no PIN, no network."""
    try:
        data = TextClient(connection, anchors).read(code_b=code_b)
    except _CARD_ERRORS as exc:
        raise _refusal(exc, "code-b") from None
    return _facts(data, Source.CARD_B)


def read_pin(connection: CardConnection, pin: str, anchors: dict[Any, Any]) -> Facts:
    """The PIN path: the same 4 facts; EF 0001 is left alone."""
    try:
        data = TextClient(connection, anchors).read(pin=pin, read_my_number=False)
    except _CARD_ERRORS as exc:
        raise _refusal(exc, "pin") from None
    return _facts(data, Source.CARD_PIN)


def read_with_my_number(connection: CardConnection, pin: str,
                        anchors: dict[Any, Any]) -> tuple[Facts, str]:
    """Municipal disaster mode only: the 4 facts and the My Number, by the PIN."""
    try:
        data = TextClient(connection, anchors).read(pin=pin, read_my_number=True)
    except _CARD_ERRORS as exc:
        raise _refusal(exc, "pin") from None
    if data.my_number is None:
        raise CardRefused("card-error", "個人番号が読めませんでした。")
    return _facts(data, Source.CARD_PIN), data.my_number


@dataclass(frozen=True, slots=True)
class TapChecks:
    """The relying-party recipes bound to a revocation configuration (``client.recipes``)."""

    config: Any                      # client.recipes.RevocationConfig
    cv_anchors: dict[Any, Any]
    terminal_id: str = "shelter"

    def enrol(self, connection: CardConnection, pin: str) -> str:
        """Strict enrolment (PIN + signed challenge), the first use §38の4 requires."""
        from ...client import recipes

        try:
            return recipes.enrol_strict(connection, pin, self.config,
                                        terminal_id=self.terminal_id,
                                        cv_anchors=self.cv_anchors).link_key
        except recipes.Refused as exc:
            raise CardRefused(exc.reason.value, exc.message, tries_left=exc.tries_left) from None

    def tap(self, connection: CardConnection) -> str:
        """PIN-less: certificate valid and not revoked, chip genuine → the link key."""
        from ...client import recipes

        try:
            return recipes.tap_check(connection, self.config, cv_anchors=self.cv_anchors).link_key
        except recipes.Refused as exc:
            raise CardRefused(exc.reason.value, exc.message) from None


def manual_facts(name: str, address: str, birth_date: dt.date | None, sex: str) -> Facts:
    """No card (or an unreadable one): what staff typed, marked unverified."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_CHARS:
        raise ShelterError(f"氏名を入力してください（{MAX_NAME_CHARS}文字まで）")
    if len(address) > MAX_ADDRESS_CHARS:
        raise ShelterError(f"住所は{MAX_ADDRESS_CHARS}文字までです")
    if sex not in ("0", "1", "2", "9"):
        raise ShelterError("性別は 1 男・2 女・9 適用不能・0 不明 のいずれかです")
    return Facts(name, address.strip(), birth_date, sex, Source.MANUAL, False)
