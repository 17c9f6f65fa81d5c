"""The CLI's card commands give the same answers in process and through pcscd + vpcd."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from mynacard.cli import main

from .conftest import AUTH_PIN, PcscSandbox, copy_image
from .test_opensc_interop import EF_AUTH_CERT, card_certificate

pytestmark = pytest.mark.xdist_group("pcscd")


def run(*args: str, env: dict[str, str] | None = None) -> str:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_card_show_through_pcsc_equals_in_process(pcsc: PcscSandbox, tmp_path: Path):
    # The served card and this copy come from the same issued image.
    served = pcsc.slots[1]
    copy = copy_image(pcsc.images[1], tmp_path / "copy")
    through_pcsc = json.loads(run("card", "show", "--reader", f"pcsc:{served.reader}", "--json"))
    in_process = json.loads(run("card", "show", "--card", str(copy), "--json"))
    assert through_pcsc == in_process
    assert through_pcsc["atr"] == served.card.atr.hex(" ").upper()


def test_sign_through_pcsc_verifies(pcsc: PcscSandbox, tmp_path: Path):
    message = tmp_path / "message.txt"
    message.write_bytes(b"signed through pcscd")
    signature = tmp_path / "message.sig"
    run("sign", "--reader", f"pcsc:{pcsc.slots[0].reader}", "--key", "auth", str(message),
        "--out", str(signature), "--pin-env", "TEST_PIN", env={"TEST_PIN": AUTH_PIN})
    public_key = card_certificate(pcsc.slots[0].card, EF_AUTH_CERT).public_key()
    public_key.verify(signature.read_bytes(), message.read_bytes(), padding.PKCS1v15(),
                      hashes.SHA256())


def test_no_card_through_pcsc_is_a_clear_error(pcsc: PcscSandbox):
    slot = pcsc.slots[1]
    slot.remove()
    try:
        result = CliRunner().invoke(
            main, ["card", "pin-status", "--reader", f"pcsc:{slot.reader}"])
    finally:
        slot.insert(pcsc.fresh_image(1))
    assert result.exit_code == 1
    assert "NoCardError" in result.output and slot.reader in result.output
    assert "Traceback" not in result.output
