"""mynacard card read-text / read-face / info end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from helpers import CODE_A, CODE_B

from mynacard.cardsim.storage import CardStore
from mynacard.cli import main


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, list(args), env=env)


def test_read_text_with_each_credential(card_dir: Path, pki_dir: Path, anchors) -> None:
    trust = str(pki_dir / "cvc")
    result = run("card", "read-text", "--card", str(card_dir), "--trust", trust, "--json",
                 "--secret-env", "S", env={"S": "1234"})
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["my_number"] == CODE_A and data["address"].startswith("東京都清瀬市")
    result = run("card", "read-text", "--card", str(card_dir), "--trust", trust, "--json",
                 "--with", "code-b", "--secret-env", "S", env={"S": CODE_B})
    assert json.loads(result.output)["my_number"] is None


def test_read_text_reports_tampering_and_wrong_pins(card_dir: Path, pki_dir: Path,
                                                    anchors) -> None:
    trust = str(pki_dir / "cvc")
    wrong = run("card", "read-text", "--card", str(card_dir), "--trust", trust,
                "--secret-env", "S", env={"S": "9999"})
    assert wrong.exit_code == 1 and "63C2" in wrong.output
    store = CardStore.open(card_dir)
    four = store.file("text/0002")
    store.update_content(files={"text/0002": four[:-1] + b"2"})  # sex 1 → 2
    store.close()
    tampered = run("card", "read-text", "--card", str(card_dir), "--trust", trust,
                   "--secret-env", "S", env={"S": "1234"})
    assert tampered.exit_code == 1
    assert "VERIFICATION FAILED: EF 0002 (基本4情報) does not match DF32" in tampered.output
    assert "Traceback" not in tampered.output


def test_read_face_writes_images(card_dir: Path, pki_dir: Path, anchors, tmp_path: Path) -> None:
    result = run("card", "read-face", "--card", str(card_dir), "--trust", str(pki_dir / "cvc"),
                 "--with", "code-a", "--secret-env", "S", "--out", str(tmp_path / "img"),
                 env={"S": CODE_A})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "img" / "photo.jp2").read_bytes()[4:8] == b"jP  "
    assert (tmp_path / "img" / "my-number.png").read_bytes()[:4] == b"\x89PNG"
    assert "not covered by the signature" in result.output


def test_info(card_dir: Path, pki_dir: Path, anchors) -> None:
    result = run("card", "info", "--card", str(card_dir), "--trust", str(pki_dir / "cvc"),
                 "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["card_serial"] == "400000012719843" and data["municipality_code"] == "13221"
    assert data["chip_authenticated"] and data["cv_chain"][0] == "9000020/001"


def test_missing_trust_anchors_is_a_clear_error(card_dir: Path, tmp_path: Path) -> None:
    result = run("card", "info", "--card", str(card_dir), "--trust", str(tmp_path / "none"))
    assert result.exit_code == 1 and "no trusted CV root keys" in result.output
