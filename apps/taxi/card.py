"""Host half of the マイタク card application: its APDUs, spoken through ``readers``.

The card half is ``cardsim.applets.taxi`` (on a real card: whatever answers the same
APDUs); the layouts both sides share are in ``facts.taxi``. Every status word the card can
answer to a debit becomes a ``Refusal`` with its reason and the message the tablet shows.
"""

from __future__ import annotations

import enum

from ...client.applets import CardManager
from ...client.commands import CardCommandError, call, read_binary, select_df, select_ef
from ...errors import MynacardError
from ...facts import taxi
from ...iso7816.apdu import CommandAPDU
from ...iso7816.sw import SW
from ...readers.base import CardConnection, ReaderError


class Reason(enum.Enum):
    DAILY_CAP = "daily-cap"
    YEARLY_CAP = "yearly-cap"
    STOPPED = "stopped"
    UNREADABLE = "unreadable"
    NOT_REGISTERED = "not-registered"
    FORGED = "forged"
    CLOCK = "clock"
    NOT_VALID = "not-valid"
    DOUBLE_TAP = "double-tap"
    STALE_DENY_LIST = "stale-deny-list"
    TERMINAL_REFUSED = "terminal-refused"


MESSAGES = {
    Reason.DAILY_CAP: "本日の利用上限（2回）に達しています (daily cap reached)",
    Reason.YEARLY_CAP: "今年度の利用可能回数が残っていません (no rides left this fiscal year)",
    Reason.STOPPED: "登録が停止されています。市役所交通政策課へお問い合わせください "
                    "(registration stopped)",
    Reason.UNREADABLE: "カードを読み取れません。もう一度かざしてください (card unreadable)",
    Reason.NOT_REGISTERED: "マイタクの登録がないカードです (no マイタク registration on this card)",
    Reason.FORGED: "登録情報の署名を確認できません (eligibility record not signed by the city)",
    Reason.CLOCK: "端末の時計がカードの最終利用より前です (terminal clock earlier than the "
                  "card's last ride)",
    Reason.NOT_VALID: "登録の有効期間外です (registration not valid on this date)",
    Reason.DOUBLE_TAP: "このカードはこの乗車で処理済みです (card already debited for this ride)",
    Reason.STALE_DENY_LIST: "停止リストが古いため利用できません。営業所で同期してください "
                            "(deny list too old: sync the terminal)",
    Reason.TERMINAL_REFUSED: "端末が認証されませんでした (the card did not accept this terminal)",
}


class Refusal(MynacardError):
    """A ride (or one card of it) the terminal must refuse; ``reason`` for programs."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(MESSAGES[reason] + (f": {detail}" if detail else ""))
        self.reason = reason


DEBIT_REFUSALS = {
    taxi.SW_DAILY_CAP: Reason.DAILY_CAP,
    taxi.SW_YEARLY_CAP: Reason.YEARLY_CAP,
    taxi.SW_CLOCK_BACKWARDS: Reason.CLOCK,
    taxi.SW_NOT_VALID_ON_DATE: Reason.NOT_VALID,
    SW.SECURITY_STATUS_NOT_SATISFIED: Reason.TERMINAL_REFUSED,
    SW.CONDITIONS_NOT_SATISFIED: Reason.NOT_REGISTERED,
}


class TaxiCard:
    """The マイタク instance of one card in one connection."""

    def __init__(self, connection: CardConnection) -> None:
        self.connection = connection

    def select(self) -> None:
        try:
            select_df(self.connection, taxi.INSTANCE_AID)
        except CardCommandError as exc:
            if exc.sw == SW.FILE_NOT_FOUND:
                raise Refusal(Reason.NOT_REGISTERED) from None
            raise

    def _read(self, fid: int, length: int) -> bytes:
        select_ef(self.connection, fid)
        data = b""
        while len(data) < length:
            chunk = read_binary(self.connection, len(data), min(0x100, length - len(data)))
            if not chunk:
                break
            data += chunk
        return data

    def record(self) -> bytes:
        """EF 0001 as stored: record ‖ city signature; ``NOT_REGISTERED`` if never written."""
        try:
            raw = self._read(taxi.EF_ELIGIBILITY, taxi.Eligibility.LENGTH
                             + taxi.SIGNATURE_LENGTH)
        except CardCommandError as exc:
            if exc.sw in (SW.OFFSET_OUTSIDE_EF, SW.CONDITIONS_NOT_SATISFIED):
                raise Refusal(Reason.NOT_REGISTERED, "not personalised") from None
            raise
        return raw

    def counters(self) -> taxi.Counters:
        return taxi.Counters.decode(self._read(taxi.EF_COUNTERS, taxi.Counters.LENGTH))

    def log(self) -> list[taxi.Receipt]:
        return taxi.decode_log(self._read(taxi.EF_RIDE_LOG,
                                          taxi.Receipt.LENGTH * taxi.LOG_ENTRIES))

    def challenge(self) -> bytes:
        return call(self.connection, CommandAPDU(0x80, taxi.INS_GET_CHALLENGE, 0, 0,
                                                 le=taxi.CHALLENGE_LENGTH),
                    "GET CHALLENGE").data

    def personalise(self, signed_record: bytes, admin_key: bytes) -> None:
        mac = taxi.personalise_mac(admin_key, self.challenge(), signed_record)
        call(self.connection, CommandAPDU(0x80, taxi.INS_PERSONALISE, 0, 0,
                                          signed_record + mac), "PERSONALISE")

    def debit(self, request: taxi.RideRequest, key: bytes) -> taxi.Receipt:
        """One DEBIT authorised by the terminal key ``key``; the card's receipt."""
        body = request.encode()
        command = CommandAPDU(0x80, taxi.INS_DEBIT, 0, 0,
                              body + taxi.debit_mac(key, self.challenge(), body),
                              le=taxi.Receipt.LENGTH)
        response = self.connection.transmit(command)
        if not response.ok:
            reason = DEBIT_REFUSALS.get(response.sw)
            if reason is None:
                raise CardCommandError("DEBIT", response.sw)
            raise Refusal(reason, f"card answered {response.sw:04X}")
        try:
            return taxi.Receipt.decode(response.data)
        except taxi.LayoutError as exc:
            raise Refusal(Reason.UNREADABLE, str(exc)) from None


def install(manager: CardManager, admin_key: bytes, terminal_master: bytes,
            receipt_key: bytes) -> None:
    """INSTALL the instance under the issuer channel ``manager`` (already open)."""
    manager.install(taxi.LOAD_FILE, taxi.INSTANCE_AID, taxi.QUOTA,
                    admin_key + terminal_master + receipt_key)


UNREADABLE_ERRORS = (ReaderError, CardCommandError, taxi.LayoutError)
"""Transport or card failures the terminal reports as an unreadable card (tap again)."""
