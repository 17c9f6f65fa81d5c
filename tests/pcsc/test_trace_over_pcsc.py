"""A trace recorded from the simulator through pcscd + vpcd replays byte for byte (issue 10)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from click.testing import CliRunner

from mynacard.cli import main
from mynacard.readers.trace import TRACE_ENV

from .conftest import PcscSandbox, copy_image

pytestmark = pytest.mark.xdist_group("pcscd")


def run(*args: str, env: dict[str, str]) -> str:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def exchanges(path: Path) -> list[tuple[str, str, str]]:
    return [(e["command"], e["response"], e["sw"])
            for e in map(json.loads, path.read_text().splitlines()) if e["type"] == "apdu"]


def test_a_trace_recorded_through_pcscd_replays_byte_for_byte(
        pcsc: PcscSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The host's INTERNAL AUTHENTICATE challenge, fixed so replay sends the same APDUs.
    monkeypatch.setattr(secrets, "token_bytes", lambda n: bytes(range(n)))
    served = pcsc.slots[1]
    recorded, replayed = tmp_path / "pcsc.jsonl", tmp_path / "replayed.jsonl"
    shown = run("card", "show", "--reader", f"pcsc:{served.reader}", "--json",
                env={TRACE_ENV: str(recorded)})
    header = json.loads(recorded.read_text().splitlines()[0])
    assert header["reader"] == served.reader and header["atr"] == served.card.atr.hex().upper()
    again = run("card", "show", "--reader", f"replay:{recorded}", "--json",
                env={TRACE_ENV: str(replayed)})
    assert json.loads(again) == json.loads(shown)
    assert len(exchanges(recorded)) > 10
    assert exchanges(replayed) == exchanges(recorded)
    # And the in-process simulator on the same issued image answers every command alike.
    copy = copy_image(pcsc.images[1], tmp_path / "copy")
    result = CliRunner().invoke(main, ["trace", "compare", str(recorded), "--card", str(copy)])
    assert result.exit_code == 0, result.output
