"""``mynacard serve`` as a process: the test plays vpcd, so no pcscd is needed."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mynacard.cardsim.card import VirtualCard
from mynacard.cardsim.vpcd import GET_ATR, POWER_ON
from mynacard.readers.pcscd import free_port_pair

from .conftest import copy_image
from .fake_vpcd import FakeVpcd

PROJECT = Path(__file__).resolve().parents[2]
SELECT_JPKI = bytes.fromhex("00A4040C0AD392F000260100000001")
SELECT_AUTH_PIN = bytes.fromhex("00A4020C020018")


def start_serve(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mynacard", "serve", *args],
        cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def stop(process: subprocess.Popen[str]) -> str:
    """SIGTERM the server; its output, once it has exited 0."""
    process.send_signal(signal.SIGTERM)
    try:
        output, _ = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"mynacard serve ignored SIGTERM:\n{output}")
    assert process.returncode == 0, output
    return output


@pytest.fixture
def image(pristine_images: tuple[Path, Path], tmp_path: Path) -> Path:
    return copy_image(pristine_images[0], tmp_path / "card")


@pytest.fixture
def vpcd_pair() -> Iterator[tuple[FakeVpcd, FakeVpcd]]:
    port = free_port_pair("127.0.0.1")
    first, second = FakeVpcd(port), FakeVpcd(port + 1)
    yield first, second
    first.close()
    second.close()


def test_serves_the_card_and_saves_it_on_sigterm(image: Path, vpcd_pair):
    vpcd, _ = vpcd_pair
    process = start_serve(str(image), "--port", str(vpcd.port))
    try:
        vpcd.accept(timeout=15)
        vpcd.send(bytes((POWER_ON,)))
        atr = vpcd.exchange(bytes((GET_ATR,)))
        assert vpcd.exchange(SELECT_JPKI) == bytes.fromhex("9000")
        assert vpcd.exchange(SELECT_AUTH_PIN) == bytes.fromhex("9000")
        assert vpcd.exchange(bytes.fromhex("002000800430303030")) == bytes.fromhex("63C2")
    finally:
        output = stop(process)
    assert "card state saved" in output and "Traceback" not in output
    # The image is closed (its lock released) and remembers the wrong PIN.
    card = VirtualCard.open(image)
    try:
        assert card.atr == atr
        assert card.store.counter("jpki/0018") == 2
    finally:
        card.close()


def test_sigusr1_removes_and_reinserts_the_card(image: Path, vpcd_pair):
    vpcd, _ = vpcd_pair
    process = start_serve(str(image), "--port", str(vpcd.port))
    try:
        vpcd.accept(timeout=15)
        atr = vpcd.exchange(bytes((GET_ATR,)))
        process.send_signal(signal.SIGUSR1)
        with pytest.raises(EOFError):
            vpcd.recv()
        process.send_signal(signal.SIGUSR1)
        vpcd.accept()
        assert vpcd.exchange(bytes((GET_ATR,))) == atr
    finally:
        stop(process)


def test_second_card_is_served_on_the_next_port(
    image: Path, pristine_images: tuple[Path, Path], tmp_path: Path, vpcd_pair
):
    second = copy_image(pristine_images[1], tmp_path / "second")
    first_vpcd, second_vpcd = vpcd_pair
    process = start_serve(str(image), "--second-card", str(second), "--port",
                          str(first_vpcd.port))
    try:
        first_vpcd.accept(timeout=15)
        second_vpcd.accept(timeout=15)
        for fake in (first_vpcd, second_vpcd):
            fake.send(bytes((POWER_ON,)))
            assert fake.exchange(SELECT_JPKI) == bytes.fromhex("9000")
        # Two different cards: each answers with its own certificate.
        read_cert = bytes.fromhex("00A4020C02000A")
        headers = []
        for fake in (first_vpcd, second_vpcd):
            assert fake.exchange(read_cert) == bytes.fromhex("9000")
            headers.append(fake.exchange(bytes.fromhex("00B0000000")))
        assert headers[0] != headers[1]
    finally:
        stop(process)


def test_not_a_card_image_is_a_clear_error(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "mynacard", "serve", str(tmp_path)],
        cwd=PROJECT, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 1
    assert f"cannot serve {tmp_path}: {tmp_path} is not a card image" in result.stderr
    assert "Traceback" not in result.stderr


def test_image_in_use_is_a_clear_error(image: Path):
    card = VirtualCard.open(image)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "mynacard", "serve", str(image)],
            cwd=PROJECT, capture_output=True, text=True, timeout=30,
        )
    finally:
        card.close()
    assert result.returncode == 1
    assert "is in use by another process" in result.stderr
    assert "Traceback" not in result.stderr
