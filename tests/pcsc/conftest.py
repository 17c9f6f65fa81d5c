"""The PC/SC harness: one private pcscd per test session, with two simulated cards in vpcd.

pcscd runs as a direct child in the foreground, with vpcd on a free pair of
ports; readiness is polled with a bound, and pcscd is stopped by PID and reaped
at the end of the session whether the tests passed or not. Tests using it carry
``xdist_group("pcscd")`` so that one xdist worker owns the machine's only pcscd.

Without pcscd / vpcd / OpenSC / pyscard these tests skip, saying what to install;
with ``MYNACARD_REQUIRE_PCSC=1`` (set by ``.ci/run``) they fail instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import pytest

from mynacard.cardsim.card import VirtualCard
from mynacard.cardsim.vpcd import VpcdBridge
from mynacard.readers.pcscd import (
    OPENSC_PKCS11,
    ForeignPcscdError,
    Pcscd,
    free_port_pair,
    missing_pcsc_requirements,
)

AUTH_PIN = "1234"
SIGN_PASSWORD = "ABC123"
CARD_WAIT = 15.0
"""A bound on polling, not a sleep: pcscd notices insertions and removals on its 400 ms
poll, which can lag on a loaded 2-core machine."""

SLOT_PERSONAS = ("kokutou-mikiya", "yamada-hanako")
"""Slot 0 has the ATR OpenSC knows; slot 1 another JPKI ATR, found by OpenSC's SELECT probe."""


def pcsc_unavailable(reason: str) -> NoReturn:
    """Skip, or under ``MYNACARD_REQUIRE_PCSC=1`` fail, because PC/SC cannot be tested here."""
    if os.environ.get("MYNACARD_REQUIRE_PCSC") == "1":
        pytest.fail(f"{reason} (MYNACARD_REQUIRE_PCSC=1: these tests must run)", pytrace=False)
    pytest.skip(reason)


def copy_image(source: Path, target: Path) -> Path:
    """A fresh copy of a card image (the lock file belongs to whoever has it open)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("lock"))
    return target


@dataclass
class Slot:
    """One vpcd slot with the bridge serving it."""

    index: int
    reader: str
    bridge: VpcdBridge

    @property
    def card(self) -> VirtualCard:
        card = self.bridge.card
        assert isinstance(card, VirtualCard), "the slot is empty"
        return card

    def remove(self) -> None:
        """Take the card out and wait until pcscd has seen it go."""
        from mynacard.readers.pcsc import PcscReader

        card = self.bridge.remove()
        if isinstance(card, VirtualCard):
            card.close()
        assert PcscReader(self.reader).wait_for_card(present=False, timeout=CARD_WAIT)

    def insert(self, image: Path) -> VirtualCard:
        """Put the card image in and wait until pcscd reports a card."""
        from mynacard.readers.pcsc import PcscReader

        card = VirtualCard.open(image)
        self.bridge.insert(card)
        assert PcscReader(self.reader).wait_for_card(present=True, timeout=CARD_WAIT)
        return card


@dataclass
class PcscSandbox:
    """The running pcscd, its two slots, and a trace of every APDU the cards answered."""

    pcscd: Pcscd
    slots: Sequence[Slot]
    images: Sequence[Path]
    workdir: Path
    trace: list[tuple[bytes, bytes]] = field(default_factory=list)
    _copies: int = 0

    def fresh_image(self, slot: int = 0) -> Path:
        self._copies += 1
        return copy_image(self.images[slot], self.workdir / f"card-{self._copies}")

    def opensc(self, *args: str, check: bool = True, stdin: bytes | None = None
               ) -> subprocess.CompletedProcess[str]:
        """Run an OpenSC (or OpenSSH) tool against this pcscd, unpinned, without file cache."""
        home = self.workdir / "home"
        home.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENSC_")}
        env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"))
        result = subprocess.run(
            list(args), env=env, capture_output=True, text=True, timeout=60,
            input=stdin.decode() if stdin else None,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} exited {result.returncode}\nstdout:\n{result.stdout}\n"
                f"stderr:\n{result.stderr}"
            )
        return result


@contextmanager
def lent_slot(pcsc: PcscSandbox, index: int) -> Iterator[Slot]:
    """A slot the test fills with a card of its own; the slot's usual card (fresh) goes back
    in afterwards, whatever happened."""
    slot = pcsc.slots[index]
    try:
        yield slot
    finally:
        slot.remove()
        slot.insert(pcsc.fresh_image(index))


@pytest.fixture(scope="session")
def pristine_images(card_templates: Callable[[str], Path]) -> tuple[Path, Path]:
    """The issued images of the two slot personas: copy them, never serve them."""
    first, second = (card_templates(name) for name in SLOT_PERSONAS)
    return first, second


@pytest.fixture(scope="session")
def pcsc(
    tmp_path_factory: pytest.TempPathFactory, pristine_images: tuple[Path, Path]
) -> Iterator[PcscSandbox]:
    missing = missing_pcsc_requirements()
    if missing:
        pcsc_unavailable(missing)
    workdir = tmp_path_factory.mktemp("pcsc")
    daemon = Pcscd(workdir, free_port_pair())
    try:
        daemon.start()
    except ForeignPcscdError as exc:
        pcsc_unavailable(str(exc))
    sandbox = PcscSandbox(daemon, [], pristine_images, workdir)

    def record(command: bytes, response: bytes) -> None:
        sandbox.trace.append((command, response))

    slots = [
        Slot(i, name, VpcdBridge(None, "127.0.0.1", daemon.vpcd_port + i, trace=record).start())
        for i, name in enumerate(daemon.reader_names)
    ]
    sandbox.slots = slots
    try:
        for slot in slots:
            slot.insert(sandbox.fresh_image(slot.index))
        yield sandbox
    finally:
        for slot in slots:
            card = slot.bridge.card
            slot.bridge.stop()
            if isinstance(card, VirtualCard):
                card.close()
        daemon.stop()


@pytest.fixture
def fresh_card(pcsc: PcscSandbox) -> VirtualCard:
    """Slot 0 holding a just-issued card (full PIN counters, nothing verified)."""
    slot = pcsc.slots[0]
    slot.remove()
    return slot.insert(pcsc.fresh_image(0))


@pytest.fixture(scope="session")
def opensc_pkcs11() -> str:
    return OPENSC_PKCS11
