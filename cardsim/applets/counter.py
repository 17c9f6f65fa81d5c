"""Example applet: a PIN-protected counter with an increment log.

====  ==========================================================
EF    content
====  ==========================================================
0001  counter value, 4 bytes big-endian (free read)
0002  log: the last 8 increments, 4 bytes each, newest first (free read)
0011  PIN (4 digits, 3 tries), set by INSTALL's parameters
====  ==========================================================

INCREMENT ``80 10 P1 P2`` (amount = P1P2, 1-65535) needs the PIN verified; it rewrites the
value and the log in one transaction (both or neither survive a power loss) and answers
the new value. Past 2³²-1 it answers ``6985``.
"""

from __future__ import annotations

from ...facts.pins import FOUR_DIGITS, PinPolicy
from ...iso7816.apdu import CommandAPDU
from ...iso7816.sw import SW
from ..application import CLA_PROPRIETARY, Application
from ..files import ALWAYS, BinaryEF, PinEF
from ..freespace import AppletData
from ..status import StatusError
from ..storage import image_key
from . import Applet

EF_VALUE, EF_LOG, EF_PIN = 0x0001, 0x0002, 0x0011
INS_INCREMENT = 0x10
LOG_ENTRIES = 8
COUNTER_PIN = PinPolicy("counter PIN", 3, FOUR_DIGITS, "exactly 4 digits")


class CounterApplet(Applet):
    LOAD_FILE = bytes.fromhex("F06D796E61636F756E74")  # F0 "mynacount"
    TITLE = "counter with PIN"
    FILES = {
        EF_VALUE: BinaryEF("counter value", read=ALWAYS),
        EF_LOG: BinaryEF("increment log", read=ALWAYS),
        EF_PIN: PinEF(COUNTER_PIN),
    }

    @classmethod
    def initial_data(cls, params: bytes) -> AppletData:
        if not COUNTER_PIN.accepts(params):
            raise ValueError(f"the install parameter is the PIN: {COUNTER_PIN.rule}")
        pin = image_key(cls.NAME, EF_PIN)
        return AppletData(
            files={image_key(cls.NAME, EF_VALUE): bytes(4).hex(),
                   image_key(cls.NAME, EF_LOG): bytes(4 * LOG_ENTRIES).hex()},
            pins={pin: params.hex()}, counters={pin: COUNTER_PIN.max_tries},
            counter_max={pin: COUNTER_PIN.max_tries})

    def increment(self, apdu: CommandAPDU) -> bytes:
        if apdu.data:
            raise StatusError(SW.WRONG_LENGTH)
        if apdu.p1p2 == 0:
            raise StatusError(SW.INCORRECT_P1P2)
        if EF_PIN not in self.verified:
            raise StatusError(SW.SECURITY_STATUS_NOT_SATISFIED)
        value_name, log_name = self.key_name(EF_VALUE), self.key_name(EF_LOG)
        value = int.from_bytes(self.store.file(value_name) or bytes(4), "big") + apdu.p1p2
        if value >= 1 << 32:
            raise StatusError(SW.CONDITIONS_NOT_SATISFIED)
        new_value = value.to_bytes(4, "big")
        log = apdu.p1p2.to_bytes(4, "big") + (self.store.file(log_name) or b"")[:-4]
        self.store.update_content(files={value_name: new_value, log_name: log})
        return new_value

    INSTRUCTIONS = {
        **Application.INSTRUCTIONS,
        (CLA_PROPRIETARY, INS_INCREMENT): increment,
    }
