"""Host side of the free-space protocol (``cardsim.freespace`` documents it): open the
SCP03-style channel with the card's diversified keys, then INSTALL, DELETE, list.

The static keys come from the issuer's master key
(``cardsim.perso.issuer_keys.load_or_create_master``) and the key diversification data the
card sends in its INITIALIZE UPDATE answer; the card's cryptogram is checked before anything
is sent under the channel.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from ..errors import MynacardError
from ..facts.mf import ISD_AID
from ..gp import scp03
from ..iso7816.apdu import CommandAPDU
from ..iso7816.sw import SW
from ..iso7816.tlv import TLVError, ber_encode, ber_iter
from ..readers.base import CardConnection
from .commands import CardCommandError, call, select_df

LOAD_FILES = {"counter": bytes.fromhex("F06D796E61636F756E74")}
"""Load files the simulator card carries, by the name the CLI uses."""


class ChannelError(MynacardError):
    """The card could not prove it holds the diversified keys (wrong card or wrong master)."""


@dataclass(frozen=True, slots=True)
class InstalledApplet:
    aid: bytes
    load_file: bytes
    quota: int
    used: int


@dataclass(frozen=True, slots=True)
class Resources:
    instances: int
    free: int
    capacity: int


class CardManager:
    def __init__(self, connection: CardConnection, master_key: bytes) -> None:
        self.connection = connection
        self.master_key = master_key
        self.session: scp03.Session | None = None

    def open(self) -> None:
        select_df(self.connection, ISD_AID)
        host_challenge = secrets.token_bytes(scp03.CHALLENGE_LENGTH)
        answer = call(self.connection, CommandAPDU(0x80, 0x50, 0x00, 0x00, host_challenge,
                                                   le=256), "INITIALIZE UPDATE").data
        if len(answer) != 29:
            raise ChannelError(f"INITIALIZE UPDATE answered {len(answer)} bytes, expected 29")
        diversification, card_challenge, card_cryptogram = answer[:10], answer[13:21], \
            answer[21:29]
        keys = scp03.StaticKeys.diversified(self.master_key, diversification)
        session = scp03.Session.derive(keys, host_challenge, card_challenge)
        if not hmac.compare_digest(session.card_cryptogram(), card_cryptogram):
            raise ChannelError("the card's cryptogram does not verify: this card was not "
                               "issued under this master key")
        self.session = session
        self._send(0x82, scp03.SECURITY_LEVEL_CMAC, 0x00, session.host_cryptogram(),
                   "EXTERNAL AUTHENTICATE")

    def _send(self, ins: int, p1: int, p2: int, data: bytes, what: str,
              le: int | None = None) -> bytes:
        if self.session is None:
            raise ChannelError("open the secure channel first")
        header = bytes((0x84, ins, p1, p2))
        field = self.session.wrap(header, data)
        return call(self.connection, CommandAPDU(0x84, ins, p1, p2, field, le=le), what).data

    def install(self, load_file: bytes, aid: bytes, quota: int, params: bytes) -> None:
        install_params = ber_encode(0xC9, params) + ber_encode(
            0xEF, ber_encode(0xC8, quota.to_bytes(2, "big")))
        data = b"".join(bytes((len(f),)) + f for f in
                        (load_file, load_file, aid, b"\x00", install_params, b""))
        self._send(0xE6, 0x0C, 0x00, data, f"INSTALL {aid.hex().upper()}")

    def delete(self, aid: bytes) -> None:
        self._send(0xE4, 0x00, 0x00, ber_encode(0x4F, aid), f"DELETE {aid.hex().upper()}")

    def list(self) -> list[InstalledApplet]:
        try:
            raw = self._send(0xF2, 0x40, 0x02, ber_encode(0x4F, b""), "GET STATUS", le=256)
        except CardCommandError as exc:
            if exc.sw == SW.REFERENCED_DATA_NOT_FOUND:
                return []
            raise
        try:
            entries = [dict(ber_iter(v)) for tag, v in ber_iter(raw) if tag == 0xE3]
            return [InstalledApplet(e[0x4F], e[0xC4], int.from_bytes(e[0xC8], "big"),
                                    int.from_bytes(e[0xD7], "big")) for e in entries]
        except (TLVError, KeyError) as exc:
            raise ChannelError(f"GET STATUS answer is malformed: {exc!r}") from None

    def resources(self) -> Resources:
        raw = call(self.connection, CommandAPDU(0x00, 0xCA, 0xFF, 0x21, le=256),
                   "GET DATA FF21").data
        try:
            fields = dict(ber_iter(dict(ber_iter(raw))[0xFF21]))
            return Resources(fields[0x81][0], int.from_bytes(fields[0x82], "big"),
                             int.from_bytes(fields[0x83], "big"))
        except (TLVError, KeyError, IndexError) as exc:
            raise ChannelError(f"GET DATA FF21 answer is malformed: {exc!r}") from None
