"""Free space: install / use / delete through the secure channel, capacity, isolation, and
atomic applet updates under a power loss at every write position."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import apdu, select_ef, verify_apdu

from mynacard.cardsim.applets import LOAD_FILES, Applet
from mynacard.cardsim.application import CLA_PROPRIETARY
from mynacard.cardsim.card import VirtualCard
from mynacard.cardsim.freespace import AppletData, PowerLoss
from mynacard.cardsim.perso.issuer_keys import load_or_create_master
from mynacard.cardsim.status import StatusError
from mynacard.cli import main
from mynacard.client.applets import CardManager, ChannelError
from mynacard.client.commands import CardCommandError
from mynacard.readers.simulator import SimulatorReader

COUNTER = bytes.fromhex("F06D796E61636F756E74")
AID_A = COUNTER + b"\x01"
AID_B = COUNTER + b"\x02"


@pytest.fixture
def master(pki_dir: Path, card_templates) -> bytes:
    card_templates("kokutou-mikiya")
    return load_or_create_master(pki_dir, create=False)


def manager(card: VirtualCard, master: bytes) -> CardManager:
    m = CardManager(SimulatorReader(card=card).connect(), master)
    m.open()
    return m


def select(card: VirtualCard, aid: bytes) -> int:
    return apdu(card, f"00A4040C{len(aid):02X}{aid.hex()}")[1]


def increment(card: VirtualCard, amount: int) -> tuple[bytes, int]:
    return apdu(card, f"8010{amount:04X}00")


def test_install_use_delete(card: VirtualCard, master: bytes) -> None:
    assert select(card, AID_A) == 0x6A82  # not installed: foreign AIDs stay 6A82
    m = manager(card, master)
    m.install(COUNTER, AID_A, 512, b"4321")
    assert [a.aid for a in m.list()] == [AID_A]
    assert select(card, AID_A) == 0x9000
    assert increment(card, 1)[1] == 0x6982  # PIN first
    apdu(card, select_ef(0x0011))
    assert apdu(card, verify_apdu("0000"))[1] == 0x63C2
    assert apdu(card, verify_apdu("4321"))[1] == 0x9000
    assert increment(card, 5) == (bytes.fromhex("00000005"), 0x9000)
    assert increment(card, 2) == (bytes.fromhex("00000007"), 0x9000)
    apdu(card, select_ef(0x0002))
    assert apdu(card, "00B0000008")[0] == bytes.fromhex("0000000200000005")
    card.power_off()
    card.power_on()
    assert select(card, AID_A) == 0x9000
    apdu(card, select_ef(0x0001))
    assert apdu(card, "00B0000004")[0] == bytes.fromhex("00000007")
    m = manager(card, master)
    m.delete(AID_A)
    assert m.list() == [] and m.resources().free == m.resources().capacity
    assert select(card, AID_A) == 0x6A82


def test_management_needs_the_channel_and_the_right_keys(card: VirtualCard,
                                                         master: bytes) -> None:
    apdu(card, "00A4040C07A0000001510000")
    assert apdu(card, "84E40000074F05" + AID_A[:5].hex())[1] == 0x6982  # no channel
    with pytest.raises(ChannelError, match="not issued under this master key"):
        manager(card, bytes(32))
    m = manager(card, master)
    assert m.session is not None
    m.session.chaining = bytes(16)  # desynchronised MAC chain = a forged command
    with pytest.raises(CardCommandError) as refused:
        m.delete(AID_A)
    assert refused.value.sw == 0x6982


def test_install_refusals(card: VirtualCard, master: bytes) -> None:
    m = manager(card, master)
    for aid in (bytes.fromhex("D392F000260100000001"), bytes.fromhex("D392F00026")):
        with pytest.raises(CardCommandError) as shadow:  # built-in AIDs cannot be shadowed
            m.install(COUNTER, aid, 256, b"1111")
        assert shadow.value.sw == 0x6A80
    with pytest.raises(CardCommandError) as unknown:
        m.install(b"\xf0\x00\x00\x00\x00", AID_A, 256, b"1111")
    assert unknown.value.sw == 0x6A88
    with pytest.raises(CardCommandError) as bad_pin:
        m.install(COUNTER, AID_A, 256, b"12")
    assert bad_pin.value.sw == 0x6A80


def test_capacity_limit(card: VirtualCard, master: bytes) -> None:
    m = manager(card, master)
    capacity = m.resources().capacity
    m.install(COUNTER, AID_A, capacity - 200, b"1111")
    with pytest.raises(CardCommandError) as full:
        m.install(COUNTER, AID_B, 201, b"1111")
    assert full.value.sw == 0x6A84
    m.install(COUNTER, AID_B, 200, b"1111")
    assert m.resources().free == 0
    with pytest.raises(CardCommandError) as tiny:
        m.delete(AID_B)
        m.install(COUNTER, AID_B, 64, b"1111")  # below what the instance needs at once
    assert tiny.value.sw == 0x6A84


class Snooper(Applet):
    """A hostile applet: tries to reach data that is not its own."""

    LOAD_FILE = bytes.fromhex("F0736E6F6F70")
    TITLE = "snooper"
    FILES = {}

    @classmethod
    def initial_data(cls, params: bytes) -> AppletData:
        return AppletData()

    def snoop(self, apdu) -> bytes:
        names = ("jpki/0017", "text/0001", "visual/0002", "applet/0001", "applet/0011",
                 "isd/scp03-keys")
        found = [n for n in names if self.store.file(n) is not None]
        for attr in ("path", "_area", "content"):
            value = getattr(self.store, attr, None)
            if value is not None and attr != "content":
                found.append(attr)
        try:
            self.store.key("jpki/0017")
        except StatusError:
            pass
        else:
            found.append("key")
        return ",".join(found).encode()

    INSTRUCTIONS = {**Applet.INSTRUCTIONS, (CLA_PROPRIETARY, 0x66): snoop}


def test_isolation(card: VirtualCard, master: bytes, monkeypatch) -> None:
    monkeypatch.setitem(LOAD_FILES, Snooper.LOAD_FILE, Snooper)
    m = manager(card, master)
    m.install(COUNTER, AID_A, 512, b"4321")
    m.install(Snooper.LOAD_FILE, Snooper.LOAD_FILE + b"\x01", 128, b"")
    assert select(card, Snooper.LOAD_FILE + b"\x01") == 0x9000
    data, sw = apdu(card, "8066000000")
    # The sandbox exposes its own (empty) data only; `_area` is the one private handle and
    # holds no card image. The counter's files under the same names stay invisible.
    assert sw == 0x9000 and data == b"_area"
    assert apdu(card, "00A4020C020001")[1] == 0x6A82  # its file table, not the counter's


def _state(card_dir: Path) -> tuple[bytes, bytes]:
    card = VirtualCard.open(card_dir, sync=False)
    card.power_on()
    try:
        assert select(card, AID_A) == 0x9000
        apdu(card, select_ef(0x0001))
        value = apdu(card, "00B0000004")[0]
        apdu(card, select_ef(0x0002))
        return value, apdu(card, "00B0000020")[0]
    finally:
        card.close()


def test_power_loss_at_every_write_of_an_update_leaves_old_or_new(card_dir: Path,
                                                                  master: bytes) -> None:
    card = VirtualCard.open(card_dir, sync=False)
    card.power_on()
    manager(card, master).install(COUNTER, AID_A, 512, b"4321")
    card.close()
    old = _state(card_dir)
    position, outcomes = 1, set()
    while True:
        card = VirtualCard.open(card_dir, sync=False)
        card.power_on()
        select(card, AID_A)
        apdu(card, select_ef(0x0011))
        assert apdu(card, verify_apdu("4321"))[1] == 0x9000
        card.freespace.inject_power_loss(position)
        try:
            answer = increment(card, 3)
        except PowerLoss:
            card.store.close()
            state = _state(card_dir)
            assert state in (old, (_add(old[0], 3), bytes.fromhex("00000003") + old[1][:-4]))
            outcomes.add("new" if state != old else "old")
            if state != old:
                old = state
            position += 1
            continue
        card.close()
        assert answer[1] == 0x9000
        break
    assert position > 3 and outcomes == {"old", "new"}


def _add(value: bytes, n: int) -> bytes:
    return (int.from_bytes(value, "big") + n).to_bytes(4, "big")


def test_power_loss_during_install_and_delete(card_dir: Path, master: bytes) -> None:
    for position in range(1, 6):
        card = VirtualCard.open(card_dir, sync=False)
        card.power_on()
        m = manager(card, master)
        installed_before = bool(m.list())
        card.freespace.inject_power_loss(position)
        try:
            if installed_before:
                m.delete(AID_A)
            else:
                m.install(COUNTER, AID_A, 512, b"4321")
        except PowerLoss:
            card.store.close()
        else:
            card.close()
        card = VirtualCard.open(card_dir, sync=False)
        card.power_on()
        listed = [a.aid for a in manager(card, master).list()]
        assert listed in ([], [AID_A])
        if listed:  # installed means fully usable
            assert select(card, AID_A) == 0x9000
            apdu(card, select_ef(0x0011))
            assert apdu(card, "00200080")[1] == 0x63C3
        card.close()


def test_cli_applets(card_dir: Path, pki_dir: Path, master: bytes) -> None:
    runner = CliRunner()
    base = ["--card", str(card_dir), "--pki", str(pki_dir)]
    done = runner.invoke(main, ["card", "applets", "install", "counter", "--aid",
                                AID_A.hex(), "--pin-env", "P", *base], env={"P": "4321"})
    assert done.exit_code == 0, done.output
    listed = runner.invoke(main, ["card", "applets", "list", "--json", *base])
    assert json.loads(listed.output)["applets"][0]["load_file"] == "counter"
    bad = runner.invoke(main, ["card", "applets", "delete", "zz", *base])
    assert bad.exit_code == 2 and "must be hex" in bad.output
    assert runner.invoke(main, ["card", "applets", "delete", AID_A.hex(), *base]).exit_code == 0
