"""Shared PKI fixtures: RSA key generation is the slow part, so CA generations and card keys are
made once per session and each test gets a copy of the store file."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from mynacard.facts.person import Resident, Sex
from mynacard.jpki.ca import SimulatorPKI, new_rsa_key, store_path
from mynacard.jpki.profile import SIGN_CA

T0 = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def resident() -> Resident:
    return Resident("佐藤", "一郎", "東京都清瀬市竹丘三丁目3番3号", dt.date(1990, 7, 14), Sex.MALE,
                    "Tokyo-to", "Kiyose-shi", "13221")


@pytest.fixture(scope="session")
def card_keys() -> list[rsa.RSAPublicKey]:
    """Public keys standing in for keys generated on cards; reused across certificates."""
    return [new_rsa_key().public_key() for _ in range(4)]


@pytest.fixture(scope="session")
def pki_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pki-template")
    pki = SimulatorPKI.open(path, now=T0)
    pki.store.close()
    return path


@pytest.fixture(scope="session")
def rolled_template(tmp_path_factory: pytest.TempPathFactory, pki_template: Path) -> Path:
    """A store whose signing CA has a second generation (one year after the first)."""
    path = tmp_path_factory.mktemp("pki-rolled")
    shutil.copy(store_path(pki_template), store_path(path))
    pki = SimulatorPKI.open(path)
    pki.rollover(SIGN_CA, T0 + dt.timedelta(days=365))
    pki.store.close()
    return path


def _copy(template: Path, tmp_path: Path) -> SimulatorPKI:
    target = tmp_path / "pki"
    target.mkdir()
    shutil.copy(store_path(template), store_path(target))
    return SimulatorPKI.open(target)


@pytest.fixture
def pki(pki_template: Path, tmp_path: Path) -> SimulatorPKI:
    return _copy(pki_template, tmp_path)


@pytest.fixture
def rolled_pki(rolled_template: Path, tmp_path: Path) -> SimulatorPKI:
    return _copy(rolled_template, tmp_path)
