"""Model-based test of the two JPKI PINs: a tiny reference model runs beside the card and
the card is driven only through APDUs (plus power, re-selection and image reloads)."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from helpers import SELECT_JPKI, apdu, load_test_persona, select_ef, verify_apdu
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mynacard.cardsim.card import VirtualCard
from mynacard.cardsim.perso.issue import issue_card
from mynacard.facts.digest_info import encode_digest_info
from mynacard.iso7816.sw import SW
from mynacard.jpki.ca import SimulatorPKI

_TEMPLATE: list[Path] = []


def template_card() -> Path:
    if not _TEMPLATE:
        out = Path(tempfile.mkdtemp(prefix="mynacard-sm-")) / "card"
        issue_card(load_test_persona("kokutou-mikiya"), out, SimulatorPKI.create())
        _TEMPLATE.append(out)
    return _TEMPLATE[0]


@dataclass
class PinModel:
    pin_fid: int
    key_fid: int
    value: bytes
    max_tries: int
    tries: int = 0
    verified: bool = False

    def __post_init__(self) -> None:
        self.tries = self.max_tries


PINS = ("auth", "sign")
SIGN_INPUT = encode_digest_info("sha256", b"\x42" * 32).hex()

wrong_values = st.binary(min_size=1, max_size=17)
new_auth_values = st.text("0123456789a", min_size=3, max_size=5)
new_sign_values = st.text("ABCZ0189a", min_size=5, max_size=17)


class JPKIPinMachine(RuleBasedStateMachine):
    @initialize()
    def fresh_card(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="mynacard-sm-run-"))
        self.card_dir = self.workdir / "card"
        shutil.copytree(template_card(), self.card_dir)
        self.card = VirtualCard.open(self.card_dir, sync=False)
        self.card.power_on()
        assert apdu(self.card, SELECT_JPKI)[1] == SW.OK
        self.model = {"auth": PinModel(0x0018, 0x0017, b"1234", 3),
                      "sign": PinModel(0x001B, 0x001A, b"ABC123", 5)}

    def teardown(self) -> None:
        self.card.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _forget_verification(self) -> None:
        for pin in self.model.values():
            pin.verified = False

    def _select(self, fid: int) -> None:
        assert apdu(self.card, select_ef(fid))[1] == SW.OK

    @rule(which=st.sampled_from(PINS))
    def verify_right(self, which: str) -> None:
        pin = self.model[which]
        self._select(pin.pin_fid)
        sw = apdu(self.card, verify_apdu(pin.value))[1]
        if pin.tries == 0:
            assert sw == SW.AUTH_METHOD_BLOCKED
        else:
            assert sw == SW.OK
            pin.tries, pin.verified = pin.max_tries, True

    @rule(which=st.sampled_from(PINS), value=wrong_values)
    def verify_wrong(self, which: str, value: bytes) -> None:
        pin = self.model[which]
        if value == pin.value:
            return
        self._select(pin.pin_fid)
        sw = apdu(self.card, verify_apdu(value))[1]
        if pin.tries == 0:
            assert sw == SW.AUTH_METHOD_BLOCKED
        else:
            pin.tries -= 1
            pin.verified = False
            assert sw == 0x63C0 | pin.tries

    @rule(which=st.sampled_from(PINS))
    def verify_empty(self, which: str) -> None:
        pin = self.model[which]
        self._select(pin.pin_fid)
        assert apdu(self.card, "00200080")[1] == 0x63C0 | pin.tries

    @rule(data=st.data())
    def change_pin(self, data: st.DataObject) -> None:
        which = data.draw(st.sampled_from(PINS))
        pin = self.model[which]
        new = data.draw(new_auth_values if which == "auth" else new_sign_values)
        self._select(pin.pin_fid)
        sw = apdu(self.card, f"00240180{len(new):02X}{new.encode().hex()}")[1]
        if not pin.verified:
            assert sw == SW.SECURITY_STATUS_NOT_SATISFIED
            return
        policy_ok = (new.isdigit() and len(new) == 4) if which == "auth" else (
            6 <= len(new) <= 16 and new.isupper() and any(c.isdigit() for c in new)
            and any(c.isalpha() for c in new) and new.isalnum())
        assert sw == (SW.OK if policy_ok else SW.WRONG_DATA)
        if policy_ok:
            pin.value = new.encode()

    @rule(which=st.sampled_from(PINS))
    def sign(self, which: str) -> None:
        pin = self.model[which]
        self._select(pin.key_fid)
        data, sw = apdu(self.card, f"802A008033{SIGN_INPUT}00")
        if pin.verified:
            assert sw == SW.OK and len(data) == 256
        else:
            assert sw == SW.SECURITY_STATUS_NOT_SATISFIED

    @rule()
    def power_cycle(self) -> None:
        self.card.power_off()
        self.card.power_on()
        self._forget_verification()
        assert apdu(self.card, SELECT_JPKI)[1] == SW.OK

    @rule()
    def reselect(self) -> None:
        assert apdu(self.card, SELECT_JPKI)[1] == SW.OK
        self._forget_verification()

    @rule()
    def reload_image(self) -> None:
        self.card.close()
        self.card = VirtualCard.open(self.card_dir, sync=False)
        self.card.power_on()
        self._forget_verification()
        assert apdu(self.card, SELECT_JPKI)[1] == SW.OK

    @precondition(lambda self: any(p.tries == 0 for p in self.model.values()))
    @rule()
    def blocked_stays_blocked(self) -> None:
        for pin in self.model.values():
            if pin.tries == 0:
                self._select(pin.pin_fid)
                assert apdu(self.card, verify_apdu(pin.value))[1] == SW.AUTH_METHOD_BLOCKED

    @invariant()
    def tries_left_match_the_model(self) -> None:
        for pin in self.model.values():
            assert 0 <= pin.tries <= pin.max_tries
            self._select(pin.pin_fid)
            assert apdu(self.card, "00200080")[1] == 0x63C0 | pin.tries


JPKIPinMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40,
                                            deadline=None)
TestJPKIPins = JPKIPinMachine.TestCase
