"""Card images: corrupt or truncated images are clear errors, never a fresh card; counters
are durable and survive a kill of the simulator at any moment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import SELECT_JPKI, apdu, select_ef, verify_apdu

from mynacard.cardsim.card import VirtualCard
from mynacard.cardsim.storage import CardImageError, CardImageInUseError, CardStore

PROJECT = Path(__file__).resolve().parents[2]


def tries_left(card_dir: Path, fid: int = 0x0018) -> int:
    card = VirtualCard.open(card_dir)
    try:
        card.power_on()
        apdu(card, SELECT_JPKI)
        apdu(card, select_ef(fid))
        sw = apdu(card, "00200080")[1]
        assert sw & 0xFFF0 == 0x63C0
        return sw & 0x0F
    finally:
        card.close()


def test_counters_and_pins_survive_a_reload(card_dir: Path) -> None:
    card = VirtualCard.open(card_dir)
    card.power_on()
    apdu(card, SELECT_JPKI)
    apdu(card, select_ef(0x0018))
    apdu(card, verify_apdu("9999"))
    apdu(card, verify_apdu("1234"))
    apdu(card, "002401800435363738")
    apdu(card, verify_apdu("0000"))
    card.close()
    assert tries_left(card_dir) == 2
    card = VirtualCard.open(card_dir)
    card.power_on()
    apdu(card, SELECT_JPKI)
    apdu(card, select_ef(0x0018))
    assert apdu(card, verify_apdu("5678"))[1] == 0x9000
    card.close()


def test_a_second_process_cannot_open_a_card_in_use(card_dir: Path) -> None:
    card = VirtualCard.open(card_dir)
    try:
        code = (f"from mynacard.cardsim.card import VirtualCard\n"
                f"from mynacard.cardsim.storage import CardImageInUseError\n"
                f"try:\n    VirtualCard.open({str(card_dir)!r})\n"
                f"except CardImageInUseError:\n    raise SystemExit(3)\n")
        result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, check=False)
        assert result.returncode == 3
    finally:
        card.close()
    VirtualCard.open(card_dir).close()  # released on close


def test_in_use_error_type(card_dir: Path) -> None:
    assert issubclass(CardImageInUseError, CardImageError)


def _corrupt_card_json_byte(card_dir: Path) -> None:
    raw = bytearray((card_dir / "card.json").read_bytes())
    index = raw.index(b'"holder"')
    raw[index + 12] ^= 0x01
    (card_dir / "card.json").write_bytes(bytes(raw))


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "card.json").write_bytes((d / "card.json").read_bytes()[:500]),
     "unreadable or truncated"),
    (_corrupt_card_json_byte, "integrity"),
    (lambda d: (d / "card.json").write_text(json.dumps({"format": "other"})), "not a"),
    (lambda d: (d / "counters.bin").write_bytes((d / "counters.bin").read_bytes()[:-1]),
     "truncated"),
    (lambda d: (d / "counters.bin").write_bytes((d / "counters.bin").read_bytes() + b"\0"),
     "truncated"),
    (lambda d: (d / "counters.bin").write_bytes(
        (d / "counters.bin").read_bytes()[:-1] + b"\x00"), "corrupted"),
    (lambda d: (d / "counters.bin").unlink(), "cannot be opened"),
    (lambda d: (d / "card.json").unlink(), "not a card image"),
])
def test_damaged_images_are_refused(card_dir: Path, damage, message: str) -> None:
    damage(card_dir)
    with pytest.raises(CardImageError, match=message):
        VirtualCard.open(card_dir)


def test_issuing_into_a_non_empty_directory_is_refused(card_dir: Path) -> None:
    store = CardStore.open(card_dir)
    content = store.content
    store.close()
    with pytest.raises(CardImageError, match="not empty"):
        CardStore.create(card_dir, content)


KILL_WORKER = """
import sys
from mynacard.cardsim.card import VirtualCard
card = VirtualCard.open(sys.argv[1])
card.power_on()
card.transmit(bytes.fromhex("00A4040C0AD392F000260100000001"))
card.transmit(bytes.fromhex("00A4020C02001B"))
print("ready", flush=True)
while True:
    card.transmit(bytes.fromhex("002000800641424331323300"[:-2]))  # right password
    card.transmit(bytes.fromhex("0020008006575255" + "4e4731"))     # wrong password
"""


@pytest.mark.parametrize("delay", [0.002, 0.011, 0.037, 0.083])
def test_killing_the_simulator_mid_verify_leaves_a_consistent_card(card_dir: Path,
                                                                  delay: float) -> None:
    worker = subprocess.Popen([sys.executable, "-c", KILL_WORKER, str(card_dir)], cwd=PROJECT,
                              stdout=subprocess.PIPE, text=True)
    assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
    time.sleep(delay)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    # The worker alternated right and wrong passwords, so a torn card has 3, 4 or 5 tries left;
    # the image must load (no corruption) and still accept the right password.
    assert tries_left(card_dir, 0x001B) in (3, 4, 5)
    card = VirtualCard.open(card_dir)
    card.power_on()
    apdu(card, SELECT_JPKI)
    apdu(card, select_ef(0x001B))
    assert apdu(card, verify_apdu("ABC123"))[1] == 0x9000
    card.close()


@pytest.mark.parametrize("sync, expected_syncs", [(True, 1), (False, 0)])
def test_sync_mode_waits_for_the_disk_once_per_verify(card_dir: Path, monkeypatch,
                                                      sync: bool, expected_syncs: int) -> None:
    card = VirtualCard.open(card_dir, sync=sync)
    card.power_on()
    apdu(card, SELECT_JPKI)
    apdu(card, select_ef(0x0018))
    calls: list[int] = []
    monkeypatch.setattr(os, "fdatasync", lambda fd: calls.append(fd))
    assert apdu(card, verify_apdu("1234"))[1] == 0x9000
    assert len(calls) == expected_syncs
    card.close()


def test_sync_default_comes_from_the_environment(monkeypatch) -> None:
    from mynacard.cardsim.storage import default_sync

    monkeypatch.setenv("MYNACARD_SYNC", "1")
    assert default_sync()
    monkeypatch.delenv("MYNACARD_SYNC")
    assert not default_sync()
