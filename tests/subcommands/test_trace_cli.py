"""``mynacard trace record`` and ``mynacard trace compare``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import PROJECT

from mynacard.cli import main

SIGN_PASSWORD = "ABC123"


@pytest.fixture
def recorded(card_dir: Path, tmp_path: Path) -> Path:
    """``card show`` then a signature with the signing key, recorded by the CLI."""
    out = tmp_path / "session.jsonl"
    message = tmp_path / "message.txt"
    message.write_bytes(b"hello")
    for command in (["card", "show"],
                    ["sign", "--key", "sign", str(message), "--pin-env", "PASSWORD"]):
        result = subprocess.run(
            [sys.executable, "-m", "mynacard", "trace", "record", "--reader", f"sim:{card_dir}",
             "--out", str(out.with_suffix(f".{command[0]}.jsonl")), "--", *command],
            cwd=PROJECT, capture_output=True, text=True, timeout=120,
            env={"PATH": "/usr/bin:/bin", "PASSWORD": SIGN_PASSWORD})
        assert result.returncode == 0, result.stderr
        assert "recorded" in result.stderr
    # One file holding both sessions, as a bench would collect them.
    out.write_text(out.with_suffix(".card.jsonl").read_text()
                   + out.with_suffix(".sign.jsonl").read_text())
    return out


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_record_runs_the_command_with_its_reader_recorded(recorded: Path) -> None:
    entries = lines(recorded)
    assert [e["type"] for e in entries].count("session") == 2
    verifies = [e for e in entries if e["type"] == "apdu" and e["command"].startswith("0020")
                and "redacted" in e]
    assert len(verifies) == 1 and verifies[0]["command"].endswith("**" * 6)
    assert SIGN_PASSWORD.encode().hex().upper() not in "".join(
        e.get("command", "") for e in entries)
    assert recorded.with_suffix(".sign.jsonl").stat().st_mode & 0o077 == 0


def compare(trace: Path, card_dir: Path, *extra: str):
    return CliRunner().invoke(main, ["trace", "compare", str(trace), "--card", str(card_dir),
                                     *extra])


def test_compare_of_an_unaltered_trace_finds_nothing(recorded: Path, card_dir: Path) -> None:
    before = sorted((p.name, p.read_bytes()) for p in card_dir.iterdir() if p.is_file())
    result = compare(recorded, card_dir, "--secret", SIGN_PASSWORD)
    assert result.exit_code == 0, result.output
    assert "got the recorded answers" in result.output
    after = sorted((p.name, p.read_bytes()) for p in card_dir.iterdir() if p.is_file())
    assert after == before  # the user's card was not touched


def test_compare_names_exactly_the_altered_apdus(recorded: Path, card_dir: Path,
                                                 tmp_path: Path) -> None:
    entries = lines(recorded)
    apdus = [e for e in entries if e["type"] == "apdu"]
    with_data = [e for e in apdus if len(e["response"]) > 40]
    data_altered, sw_altered = with_data[3], apdus[-1]
    flipped = format(int(data_altered["response"][20:22], 16) ^ 0x01, "02X")
    data_altered["response"] = data_altered["response"][:20] + flipped \
        + data_altered["response"][22:]
    sw_altered["sw"] = "6982"
    altered = tmp_path / "altered.jsonl"
    altered.write_text("".join(json.dumps(e) + "\n" for e in entries))
    result = compare(altered, card_dir, "--secret", SIGN_PASSWORD)
    assert result.exit_code == 1
    rows = [line for line in result.output.splitlines() if line.startswith("| ")][1:]
    assert [row.split("|")[1].strip() for row in rows] == [
        f"line {entries.index(data_altered) + 1}", f"line {entries.index(sw_altered) + 1}"]
    assert f"from byte 10: {flipped}" in rows[0]
    assert "`6982 (data same, 256 bytes)`" in rows[1] and "`9000 (data same" in rows[1]
    assert f"2 of {len(apdus)} APDUs" in result.output


def test_compare_needs_the_redacted_secrets(recorded: Path, card_dir: Path) -> None:
    result = compare(recorded, card_dir)
    assert result.exit_code == 1
    assert "redacted secret (6 bytes)" in result.output and "--secret" in result.output
    assert "Traceback" not in result.output
