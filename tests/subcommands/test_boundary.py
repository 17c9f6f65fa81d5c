"""The CLI's one error boundary, the shared default PKI directory, and the lazy command table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import der_object

from mynacard.cli import main
from mynacard.subcommands.common import default_pki_dir

PERSONA = Path(__file__).resolve().parents[2] / "vectors" / "personas" / "kokutou-mikiya.yaml"


@pytest.mark.parametrize(("content", "message"), [
    ("{}", "PersonError: family_name: is required"),
    ("not json", "PersonError: (resident): is not valid JSON"),
    ('{"family_name": "山田", "given_name": "花子", "address": "x", "birth_date": "1850-01-01",'
     ' "sex": "2", "prefecture_romaji": "Tokyo-to", "municipality_romaji": "Kiyose-shi",'
     ' "municipality_code": "13221"}', "PersonError: birth_date: 1850-01-01 is before the Meiji"),
    ('[1, 2]', "PersonError: (resident): must be a mapping of fields"),
])
@pytest.mark.parametrize("command", ["issue", "change-address"])
def test_a_malformed_resident_is_one_line_and_touches_no_store(
        tmp_path: Path, command: str, content: str, message: str) -> None:
    resident = tmp_path / "resident.json"
    resident.write_text(content, encoding="utf-8")
    store = tmp_path / "store"
    args = (["issue", "--card-expiry", "2030-01-01"] if command == "issue"
            else ["change-address", "some-card"])
    result = CliRunner().invoke(main, ["pki", *args, "--resident", str(resident),
                                       "--store", str(store)])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not store.exists()


def test_empty_xdg_data_home_counts_as_unset(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    monkeypatch.delenv("MYNACARD_PKI", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", "")
    assert default_pki_dir() == str(tmp_path / ".local" / "share" / "mynacard" / "pki")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_pki_dir() == str(tmp_path / "xdg" / "mynacard" / "pki")


def test_card_issue_and_pki_share_the_default_store(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    monkeypatch.delenv("MYNACARD_PKI", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", "")
    runner = CliRunner()
    card = tmp_path / "card"
    assert runner.invoke(main, ["card", "issue", str(PERSONA), "--out", str(card)]).exit_code == 0
    status = runner.invoke(main, ["pki", "status", str(card)])
    assert status.exit_code == 0, status.output
    assert "auth" in status.output and "good" in status.output
    assert (tmp_path / ".local" / "share" / "mynacard" / "pki" / "pki.sqlite3").is_file()


def test_help_imports_no_command_module() -> None:
    code = ("import sys; from mynacard.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('mynacard.') and "
            "m not in ('mynacard.cli', 'mynacard.errors', 'mynacard.subcommands', "
            "'mynacard.subcommands.common')))\n"
            "print('sqlite3' in sys.modules, 'PIL' in sys.modules, 'yaml' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[-2:] == ["[]", "False False False"]


@pytest.mark.parametrize("der", [
    bytes.fromhex("0403 0102FF"),                      # short form, value ends in FF
    bytes.fromhex("3082 0004 0402 FFFF"),              # long form, value all FF
    bytes.fromhex("3081 80") + bytes.fromhex("0481 7D") + b"\xff" * 125,
])
def test_der_object_reads_the_length_not_the_filler(der: bytes) -> None:
    # About 1 certificate in 256 ends in FF: reading an EF must stop at the DER length.
    assert der_object(der + b"\xff" * 300) == der
