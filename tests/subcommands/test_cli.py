"""The command line: each command works through the reader layer and fails with one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from helpers import PERSONAS, der_object

from mynacard.cli import main


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_issue_and_show(runner: CliRunner, tmp_path: Path, pki_dir: Path) -> None:
    out = tmp_path / "card"
    result = runner.invoke(main, ["card", "issue", str(PERSONAS / "yamada-hanako.yaml"),
                                  "--out", str(out), "--pki", str(pki_dir), "--json"])
    assert result.exit_code == 0, result.output
    issued = json.loads(result.output)
    assert issued["holder"] == "山田\u3000花子" and issued["signing_certificate"]
    shown = runner.invoke(main, ["card", "show", "--card", str(out), "--json"])
    assert shown.exit_code == 0, shown.output
    info = json.loads(shown.output)
    assert info["atr"] == "3B DA 13 FF 81 31 FB 46 80 12 39 2F 31 C1 73 C6 01 C0 3B"
    assert info["token"] == "JPKIAPICCTOKEN2"
    assert all(info["applications"].values())
    assert info["pin_tries_left"] == {"auth": 3, "sign": 5}
    assert "JPKI-SIM" in info["certificates"]["auth_ca"]["subject"]
    text = runner.invoke(main, ["card", "show", "--card", str(out)])
    assert "tries left    sign: 5" in text.output


def test_sign_with_pin_from_environment_and_verify(runner: CliRunner, card_dir: Path,
                                                   tmp_path: Path) -> None:
    message = tmp_path / "doc.txt"
    message.write_bytes(b"contract")
    result = runner.invoke(main, ["sign", "--card", str(card_dir), "--key", "sign",
                                  str(message), "--pin-env", "MYNA_PW"],
                           env={"MYNA_PW": "ABC123"})
    assert result.exit_code == 0, result.output
    signature = (tmp_path / "doc.txt.sig").read_bytes()
    shown = runner.invoke(main, ["apdu", "--card", str(card_dir), "--json",
                                 "00A4040C0AD392F000260100000001", "00A4020C02001B",
                                 "0020008006" + b"ABC123".hex(), "00A4020C020001",
                                 *[f"00B0{offset:04X}00" for offset in range(0, 2048, 256)]])
    responses = json.loads(shown.output)["responses"]
    assert [r["sw"] for r in responses] == ["9000"] * len(responses)
    der = bytes.fromhex("".join(r["data"] for r in responses[4:]))
    key = x509.load_der_x509_certificate(der_object(der)).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(signature, b"contract", padding.PKCS1v15(), hashes.SHA256())


def test_sign_prompts_hidden_and_reports_a_wrong_pin(runner: CliRunner, card_dir: Path,
                                                     tmp_path: Path) -> None:
    message = tmp_path / "m"
    message.write_bytes(b"m")
    result = runner.invoke(main, ["sign", "--card", str(card_dir), "--key", "auth",
                                  str(message)], input="0000\n")
    assert result.exit_code == 1
    assert "wrong user-authentication PIN: 2 tries left" in result.output
    assert "0000" not in result.output
    status = runner.invoke(main, ["card", "pin-status", "--card", str(card_dir), "--json"])
    assert json.loads(status.output) == {"auth": 2, "sign": 5}


def test_signature_from_cli_verifies(runner: CliRunner, card_dir: Path, tmp_path: Path) -> None:
    message = tmp_path / "m"
    message.write_bytes(b"hello")
    sig = tmp_path / "out.sig"
    result = runner.invoke(main, ["sign", "--card", str(card_dir), "--key", "auth", str(message),
                                  "--out", str(sig), "--hash", "sha512"], input="1234\n")
    assert result.exit_code == 0, result.output
    raw = runner.invoke(main, ["apdu", "--card", str(card_dir), "--json",
                               "00A4040C0AD392F000260100000001", "00A4020C02000A",
                               *[f"00B0{offset:04X}00" for offset in range(0, 2048, 256)]])
    der = bytes.fromhex("".join(r["data"] for r in json.loads(raw.output)["responses"][2:]))
    key = x509.load_der_x509_certificate(der_object(der)).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(sig.read_bytes(), b"hello", padding.PKCS1v15(), hashes.SHA512())


def test_apdu_prints_status_word_meanings(runner: CliRunner, card_dir: Path) -> None:
    result = runner.invoke(main, ["apdu", "--card", str(card_dir), "00A4040C06D27600012401",
                                  "00 A4 04 0C 0A D3 92 F0 00 26 01 00 00 00 01"])
    assert result.exit_code == 0
    assert "6A82  (file or application not found)" in result.output
    assert "9000  (normal completion)" in result.output


@pytest.mark.parametrize("args, message", [
    (["apdu", "--card", "{card}", "zz"], "not hexadecimal"),
    (["card", "show"], "say which card"),
    (["card", "show", "--card", "{card}", "--reader", "sim:x"], "either --card or --reader"),
    (["card", "show", "--card", "{missing}"], "not a card image"),
    (["card", "show", "--reader", "nfc:1"], "unknown reader spec"),
    (["sign", "--card", "{card}", "--key", "auth", "{file}", "--pin-env", "UNSET_VAR_X"],
     "UNSET_VAR_X is not set"),
])
def test_errors_are_one_clear_line(runner: CliRunner, card_dir: Path, tmp_path: Path,
                                   args: list[str], message: str) -> None:
    (tmp_path / "f").write_bytes(b"x")
    filled = [a.format(card=card_dir, missing=tmp_path / "none", file=tmp_path / "f")
              for a in args]
    result = runner.invoke(main, filled)
    assert result.exit_code in (1, 2)
    assert message in result.output
    assert "Traceback" not in result.output


def test_help_everywhere(runner: CliRunner) -> None:
    for command in (["--help"], ["card", "--help"], ["card", "issue", "--help"],
                    ["sign", "--help"], ["apdu", "--help"], ["demo", "--help"]):
        result = runner.invoke(main, command)
        assert result.exit_code == 0 and "Usage:" in result.output


def test_demo_runs_and_reports_the_lockout(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["demo", "--out", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    assert "tries left 3 → 2 → 1 → 0" in result.output
    assert "6984" in result.output
    again = runner.invoke(main, ["demo", "--out", str(tmp_path / "demo")])
    assert again.exit_code == 0
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("mine")
    refused = runner.invoke(main, ["demo", "--out", str(tmp_path / "other")])
    assert refused.exit_code == 1 and (tmp_path / "other" / "keep.txt").exists()
