"""Constants and small helpers shared by the tests (import as ``from helpers import …``).

Identifiers and credentials are literal here on purpose: the tests' independent oracle.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from asn1crypto import parser

from mynacard.cardsim.card import VirtualCard
from mynacard.cardsim.perso.persona import Persona, load_persona
from mynacard.jpki.ca import SimulatorPKI
from mynacard.jpki.ocsp import OCSPResponder
from mynacard.jpki.server import RevocationServer

PROJECT = Path(__file__).resolve().parent.parent
PERSONAS = PROJECT / "vectors" / "personas"
TEST_TODAY = dt.date(2026, 11, 23)

# Credentials of the 黒桐 幹也 test card (vectors/personas/kokutou-mikiya.yaml).
CODE_A = "537686677188"
CODE_B = "55021720352285"
BIRTH = "550217"
TEXT_PIN = "1234"
RESIDENT_PIN = "1234"

JPKI_AID = "D392F000260100000001"
SELECT_JPKI = "00A4040C0A" + JPKI_AID


@contextmanager
def pki_served_on_loopback(directory: Path, *, created_at: dt.datetime
               ) -> Iterator[tuple[SimulatorPKI, Path, RevocationServer]]:
    """A fresh simulator PKI in ``directory`` whose certificates name a loopback CRL/OCSP
    server (an ephemeral port): (pki, the CRL folder it serves, the server). Stopped and
    closed on exit."""
    pki = SimulatorPKI.open(directory / "pki", now=created_at)
    crl_dir = directory / "crl"
    crl_dir.mkdir()
    server = RevocationServer("127.0.0.1", 0, crl_dir, OCSPResponder(pki))
    with pki.store.transaction() as db:
        pki.store.set_meta(db, "base_url", server.url)
    server.start_background()
    try:
        yield pki, crl_dir, server
    finally:
        server.shutdown()
        server.server_close()
        pki.store.close()


def load_test_persona(name: str) -> Persona:
    return load_persona(PERSONAS / f"{name}.yaml", today=TEST_TODAY)


def apdu(card: VirtualCard, hexstr: str) -> tuple[bytes, int]:
    """Send an APDU given in hex (spaces allowed); return (data, sw)."""
    raw = card.transmit(bytes.fromhex(hexstr.replace(" ", "")))
    return raw[:-2], int.from_bytes(raw[-2:], "big")


def der_object(data: bytes) -> bytes:
    """The DER object at the start of ``data`` (an EF holding a certificate, then filler),
    delimited by its own length: never by stripping FF, which a DER object may end in."""
    _class, _method, _tag, header, content, _trailer = parser.parse(data)
    return header + content


def select_ef(fid: int) -> str:
    return f"00A4020C02{fid:04X}"


def verify_apdu(pin: str | bytes) -> str:
    raw = pin.encode() if isinstance(pin, str) else pin
    return f"00200080{len(raw):02X}{raw.hex()}"
