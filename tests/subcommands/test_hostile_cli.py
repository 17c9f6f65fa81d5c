"""Garbage on the command line (issue 9, hardening 6): each case ends in one clear error line
with a non-zero exit status, never a traceback, and costs nothing it should not (no PIN try, no
CRL built for nowhere)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from mynacard.cli import main
from mynacard.client.jpki import JPKIClient, JPKIKey
from mynacard.readers.simulator import SimulatorReader

BAD_PEM = "-----BEGIN CERTIFICATE-----\n!!!notbase64@@\n-----END CERTIFICATE-----\n"


def auth_tries_left(card_dir: Path) -> int:
    connection = SimulatorReader.for_image(card_dir).connect()
    try:
        return JPKIClient(connection).tries_left(JPKIKey.AUTH)
    finally:
        connection.disconnect()


@pytest.mark.parametrize(("pin", "out", "message", "status"), [
    ("１２３４", None, "PinFormatError: user-authentication PIN: must be printable ASCII", 1),
    ("1" * 100_000, None, "PinFormatError: user-authentication PIN: must be 1 to 16", 1),
    ("1234", "missing/x.sig", "Invalid value for --out: folder", 2),
], ids=["non-ASCII PIN", "100 KB PIN", "--out in a missing folder"])
def test_sign_refuses_before_touching_the_card(tmp_path: Path, make_card_dir: Callable[..., Path],
                                               monkeypatch: pytest.MonkeyPatch, pin: str,
                                               out: str | None, message: str,
                                               status: int) -> None:
    card_dir = make_card_dir()
    (tmp_path / "msg").write_bytes(b"hello")
    monkeypatch.setenv("TEST_PIN", pin)
    args = ["sign", "--card", str(card_dir), "--key", "auth", "--pin-env", "TEST_PIN",
            str(tmp_path / "msg")]
    if out is not None:
        args += ["--out", str(tmp_path / out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == status
    assert message in result.output and "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # not an escaped exception
    assert auth_tries_left(card_dir) == 3  # no try spent on a PIN that never was one


def files(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "bad.pem").write_text(BAD_PEM)
    (tmp_path / "plain-file").write_text("not a directory")
    (tmp_path / "empty").mkdir()
    (tmp_path / "no-cases").mkdir()
    (tmp_path / "no-cases" / "manifest.json").write_text("[[[")
    return {"pem": tmp_path / "bad.pem", "file": tmp_path / "plain-file",
            "empty": tmp_path / "empty", "no-cases": tmp_path / "no-cases",
            "missing": tmp_path / "missing" / "x", "store": tmp_path / "store"}


CASES = {
    "verify: bad base64 in a PEM": (
        lambda f: ["pki", "verify", str(f["pem"])], 1, "PEMError"),
    "verify: --nonce zz": (
        lambda f: ["pki", "verify", str(f["pem"]), "--nonce", "zz"], 2,
        "Invalid value for '--nonce': 'zz' is not hexadecimal"),
    "verify: --store on a file": (
        lambda f: ["pki", "verify", str(f["pem"]), "--store", str(f["file"])], 1,
        "StoreError: " + "{file} is a file, not a PKI store directory"),
    "loss: --store on a file": (
        lambda f: ["pki", "loss", "some-card", "--store", str(f["file"])], 1,
        "StoreError: " + "{file} is a file, not a PKI store directory"),
    "publish: --out on a file": (
        lambda f: ["pki", "publish", "--store", str(f["store"]), "--out", str(f["file"])], 2,
        "Directory '{file}' is a file"),
    "serve: --crl-dir on a file": (
        lambda f: ["pki", "serve", "--store", str(f["store"]), "--crl-dir", str(f["file"]),
                   "--duration", "0"], 2, "Directory '{file}' is a file"),
    "serve: --port 99999": (
        lambda f: ["pki", "serve", "--store", str(f["store"]), "--port", "99999",
                   "--duration", "0"], 2, "99999 is not in the range 0<=x<=65535"),
    "crl synth: --out in a missing folder": (
        lambda f: ["pki", "crl", "synth", "--entries", "1", "--out", str(f["missing"])], 2,
        "Invalid value for --out: folder {missing_parent} does not exist"),
    "vectors run: an empty folder": (
        lambda f: ["vectors", "run", "--dir", str(f["empty"])], 1,
        "VectorsError: {empty} has no manifest.json"),
    "vectors run: a manifest that is not JSON": (
        lambda f: ["vectors", "run", "--dir", str(f["no-cases"])], 1,
        "VectorsError: {no_cases}/manifest.json is unreadable"),
    "status: an unknown card": (
        lambda f: ["pki", "status", "no-such-card", "--store", str(f["store"])], 1,
        "LifecycleError: no card 'no-such-card' in the PKI store"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_garbage_argument_is_one_clear_error(tmp_path: Path, case: str) -> None:
    make_args, status, message = CASES[case]
    paths = files(tmp_path)
    result = CliRunner().invoke(main, make_args(paths))
    assert result.exit_code == status, result.output
    expected = message.format(file=paths["file"], empty=paths["empty"],
                              no_cases=paths["no-cases"], missing_parent=paths["missing"].parent)
    assert expected in result.output and "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # not an escaped exception
    assert not paths["missing"].parent.exists()
    if status == 1:
        assert len(result.output.strip().splitlines()) == 1
