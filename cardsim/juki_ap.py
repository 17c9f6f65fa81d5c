"""住基AP (resident registry application), AID D3 92 10 00 31 00 01 01 04 01 (facts §6).

====  ==========================================================================
EF    content
====  ==========================================================================
0002  16-byte key reference, purpose unknown (selectable only)
001C  住民基本台帳用暗証番号 (4 digits, 3 tries): a key reference of its own, separate
      from 共通AP 001C although UIs treat them as one; changed by CHANGE KEY ``80 32``
====  ==========================================================================

SET SESSION KEY answers ``6982``.
"""

from __future__ import annotations

from ..facts.juki import AID, EF_PIN
from ..facts.pins import RESIDENT_PIN
from .application import CLA_PROPRIETARY, INS_CHANGE_KEY, Application
from .files import OpaqueEF, PinEF


class JukiApplication(Application):
    NAME = "juki"
    AID = AID
    FILES = {
        0x0002: OpaqueEF("16-byte key reference; purpose unknown"),
        EF_PIN: PinEF(RESIDENT_PIN),
    }
    INSTRUCTIONS = {
        **Application.INSTRUCTIONS,
        (CLA_PROPRIETARY, INS_CHANGE_KEY): Application.change_key,
    }
