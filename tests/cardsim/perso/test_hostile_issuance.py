"""Hostile personas and late refusals (issue 9, hardening 6 and 7): every bad input ends in one
clear line, never a traceback or a hang, and a refused issuance leaves neither a live
certificate in the PKI store nor a half-written image."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import PERSONAS, TEST_TODAY, load_test_persona

from mynacard.cardsim import storage
from mynacard.cardsim.perso.issue import issue_card
from mynacard.cardsim.perso.persona import (
    JP2_SIGNATURE,
    MAX_IMAGE_BYTES,
    PNG_SIGNATURE,
    FaceImages,
    PersonError,
    load_persona,
    parse_persona,
)
from mynacard.jpki import lifecycle
from mynacard.jpki.ca import IssuanceError, SimulatorPKI
from mynacard.jpki.store import Status

PHOTO_80K = JP2_SIGNATURE + bytes(80 * 1024)


def base() -> dict[str, Any]:
    return yaml.safe_load((PERSONAS / "kokutou-mikiya.yaml").read_text(encoding="utf-8"))


def changed(**top: Any) -> Callable[[Path], str]:
    """A persona file writer: the bundled persona with ``top``-level keys replaced."""
    def write(tmp: Path) -> str:
        return yaml.safe_dump(base() | top, allow_unicode=True)
    return write


def named(family: str) -> Callable[[Path], str]:
    def write(tmp: Path) -> str:
        data = base()
        data["name"]["family"] = family
        return yaml.safe_dump(data, allow_unicode=True)
    return write


def with_photo(make: Callable[[Path], Path]) -> Callable[[Path], str]:
    def write(tmp: Path) -> str:
        return yaml.safe_dump(base() | {"face": {"photo": str(make(tmp))}}, allow_unicode=True)
    return write


def big_photo(tmp: Path) -> Path:
    (tmp / "big.jp2").write_bytes(PHOTO_80K)
    return tmp / "big.jp2"


def fifo(tmp: Path) -> Path:
    os.mkfifo(tmp / "photo.jp2")
    return tmp / "photo.jp2"


HOSTILE_PERSONAS = {
    "100 KB name": (named("あ" * 100_000), "name.family: must be at most 100 characters"),
    "lone surrogate": (lambda tmp: yaml.safe_dump(base(), allow_unicode=True).replace(
        "黒桐", '"\\uD800"'), "name.family: must not contain control characters or lone"),
    "NUL in the name": (named("黒\x00桐"), "name.family: must not contain control characters"),
    "born before Meiji": (changed(birth_date="1850-01-01"),
                          "birth_date: 1850-01-01 is before the Meiji era"),
    "80 KB photo": (with_photo(big_photo), "face.photo: is 81932 bytes; at most 40960"),
    "photo is /dev/zero": (with_photo(lambda tmp: Path("/dev/zero")),
                           "face.photo: must be a regular file"),
    "photo is a FIFO": (with_photo(fifo), "face.photo: must be a regular file"),
    "deeply nested YAML": (lambda tmp: "a: " + "[" * 100_000, "is nested too deeply"),
    "pins as a string": (changed(pins="1234"), "pins: must be a mapping of fields"),
    "name as a string": (changed(name="黒桐幹也"), "name: must be a mapping of fields"),
    "municipality as a number": (changed(municipality=13221),
                                 "municipality: must be a mapping of fields"),
    "card as a list": (changed(card=["2025-10-27"]), "card: must be a mapping of fields"),
    "face as a string": (changed(face="photo.jp2"), "face: must be a mapping of fields"),
    "retry limits as a string": (
        changed(card=base()["card"] | {"retry_limits": "3"}),
        "card.retry_limits: must be a mapping of fields"),
    "a PIN as a list": (changed(pins={"auth": [1, 2, 3, 4]}), "pins.auth: must be a string"),
}


def cards_in(pki_dir: Path) -> set[str]:
    pki = SimulatorPKI.open(pki_dir)
    try:
        return {row[0] for row in pki.store.query("SELECT card_id FROM card")}
    finally:
        pki.store.close()


@pytest.mark.parametrize("case", HOSTILE_PERSONAS, ids=list(HOSTILE_PERSONAS))
def test_a_hostile_persona_is_one_line_and_issues_nothing(tmp_path: Path, pki_dir: Path,
                                                         case: str) -> None:
    write, message = HOSTILE_PERSONAS[case]
    persona = tmp_path / "persona.yaml"
    persona.write_text(write(tmp_path), encoding="utf-8")
    out = tmp_path / "card"
    before = cards_in(pki_dir)
    # A subprocess with a deadline: /dev/zero and a FIFO used to hang issuance for ever.
    result = subprocess.run(
        [sys.executable, "-m", "mynacard", "card", "issue", str(persona), "--out", str(out),
         "--pki", str(pki_dir)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()
    assert cards_in(pki_dir) == before


@pytest.mark.parametrize("field", sorted(MAX_IMAGE_BYTES))
def test_each_face_image_is_bounded_by_its_field(tmp_path: Path, field: str) -> None:
    magic = JP2_SIGNATURE if field == "face.photo" else PNG_SIGNATURE
    image = tmp_path / "image"
    image.write_bytes(magic + bytes(MAX_IMAGE_BYTES[field] + 1 - len(magic)))
    data = base() | {"face": {field.split(".")[1]: str(image)}}
    with pytest.raises(PersonError, match=f"at most {MAX_IMAGE_BYTES[field]}") as caught:
        parse_persona(data, TEST_TODAY)
    assert caught.value.field == field


def test_images_at_every_bound_at_once_fit_the_face_record(tmp_path: Path,
                                                           session_pki: SimulatorPKI) -> None:
    # The bounds are only honest if all three maxima together still fit EF 0002's 16-bit
    # offset table.
    files = {}
    for field, limit in MAX_IMAGE_BYTES.items():
        magic = JP2_SIGNATURE if field == "face.photo" else PNG_SIGNATURE
        files[field.split(".")[1]] = tmp_path / field
        files[field.split(".")[1]].write_bytes(magic + bytes(limit - len(magic)))
    data = base() | {"face": {k: str(v) for k, v in files.items()}}
    persona = parse_persona(data, TEST_TODAY)
    card = storage.CardStore.open(issue_card(persona, tmp_path / "card", session_pki))
    try:
        face = card.file(storage.image_key("visual", 0x0002))
        assert face is not None and bytes(MAX_IMAGE_BYTES["face.photo"] - 12) in face
    finally:
        card.close()


def test_a_persona_file_that_is_a_fifo_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "persona.yaml")
    with pytest.raises(PersonError, match="must be a regular file"):
        load_persona(tmp_path / "persona.yaml", TEST_TODAY)


# -- hardening 7: the store and the image agree on failure --------------------------------

def live_cards(pki: SimulatorPKI, card_ids: set[str]) -> dict[str, int]:
    """Card id → number of certificates still good or held, for the cards given."""
    return {card_id: len(lifecycle.live_certificates(pki, card_id)) for card_id in card_ids}


def new_cards(pki: SimulatorPKI, before: set[str]) -> set[str]:
    return {row[0] for row in pki.store.query("SELECT card_id FROM card")} - before


def oversize_photo(tmp_path: Path) -> tuple[Any, Path]:
    # A Persona built by code bypasses the file bounds; the record check must still come
    # before the store.
    persona = load_test_persona("kokutou-mikiya")
    return (dataclasses.replace(persona, face=FaceImages(photo=PHOTO_80K)), tmp_path / "card")


def long_address(tmp_path: Path) -> tuple[Any, Path]:
    # Valid for the resident record (200 characters) but the signing certificate carrying it
    # outgrows its 2048-byte EF: known only once the certificate is built.
    return (parse_persona(base() | {"address": "東" * 200}, TEST_TODAY), tmp_path / "card")


def out_not_empty(tmp_path: Path) -> tuple[Any, Path]:
    (tmp_path / "card").mkdir()
    (tmp_path / "card" / "keep.txt").write_text("mine")
    return load_test_persona("kokutou-mikiya"), tmp_path / "card"


def out_is_a_file(tmp_path: Path) -> tuple[Any, Path]:
    (tmp_path / "card").write_text("mine")
    return load_test_persona("kokutou-mikiya"), tmp_path / "card"


LATE_REFUSALS = {
    "face record over 64 KiB": (oversize_photo, ValueError, "at most 65535"),
    "signing certificate over its EF": (long_address, IssuanceError,
                                        "signing certificate would be"),
    "--out not empty": (out_not_empty, storage.CardImageError, "not empty"),
    "--out is a file": (out_is_a_file, storage.CardImageError, "not a directory"),
}


@pytest.mark.parametrize("case", LATE_REFUSALS, ids=list(LATE_REFUSALS))
def test_a_refused_issuance_commits_nothing_to_the_store(tmp_path: Path, case: str,
                                                         session_pki: SimulatorPKI) -> None:
    make, error, message = LATE_REFUSALS[case]
    persona, out = make(tmp_path)
    existing = set(os.listdir(tmp_path))
    before = {row[0] for row in session_pki.store.query("SELECT card_id FROM card")}
    with pytest.raises(error, match=message):
        issue_card(persona, out, session_pki)
    assert new_cards(session_pki, before) == set()
    assert set(os.listdir(tmp_path)) == existing  # no image, no staging directory


def test_an_image_that_cannot_be_written_gets_its_certificates_revoked(
        tmp_path: Path, session_pki: SimulatorPKI, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = storage.atomic_write

    def disk_full_at_counters(target: Path, data: bytes, mode: int = 0o644) -> None:
        if Path(target).name == "counters.bin":
            raise OSError(28, "No space left on device")
        real_write(target, data, mode)

    monkeypatch.setattr(storage, "atomic_write", disk_full_at_counters)
    before = {row[0] for row in session_pki.store.query("SELECT card_id FROM card")}
    with pytest.raises(storage.CardImageError, match="No space left on device"):
        issue_card(load_test_persona("kokutou-mikiya"), tmp_path / "card", session_pki)
    (card_id,) = new_cards(session_pki, before)
    assert live_cards(session_pki, {card_id}) == {card_id: 0}
    records = session_pki.store.card_certificates(card_id)
    assert {r.role.value for r in records} == {"auth", "sign"}
    assert all(r.status is Status.REVOKED and r.reason is not None
               and r.reason.name == "cessation_of_operation" for r in records)
    assert lifecycle.card(session_pki, card_id).state == "closed"
    assert os.listdir(tmp_path) == []  # neither the image nor its staging directory
