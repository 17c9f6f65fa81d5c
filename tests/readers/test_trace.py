"""APDU traces (readers.trace): recording with secrets redacted, replay as a back end."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import CODE_B

from mynacard.cli import main
from mynacard.client.commands import CardCommandError, select_df, select_ef, verify
from mynacard.client.jpki import JPKIClient, JPKIKey
from mynacard.facts import text
from mynacard.readers.base import CardRemovedError
from mynacard.readers.faults import FaultPlan, FaultyReader
from mynacard.readers.registry import open_reader
from mynacard.readers.simulator import SimulatorReader
from mynacard.readers.trace import (
    TRACE_ENV,
    TraceError,
    TraceMismatchError,
    TracingReader,
    read_trace,
    record,
    secret_range,
)

AUTH_PIN, SIGN_PASSWORD = "1234", "ABC123"
NEW_SIGN_PASSWORD = "QZXWVQZXWV12"
"""Letters no hex dump, date or record of the test card contains: found only if leaked."""


def apdu_lines(path: Path) -> list[dict]:
    return [entry for entry in map(json.loads, path.read_text().splitlines())
            if entry["type"] == "apdu"]


def test_secrets_never_reach_the_file(card_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    with SimulatorReader.for_image(card_dir).connect() as inner, record(inner, path) as conn:
        client = JPKIClient(conn)
        client.verify(JPKIKey.AUTH, AUTH_PIN)
        client.change_pin(JPKIKey.SIGN, SIGN_PASSWORD, NEW_SIGN_PASSWORD)
        client.sign(JPKIKey.SIGN, b"message", NEW_SIGN_PASSWORD)
        select_df(conn, text.AID)
        select_ef(conn, text.EF_CODE_B)
        verify(conn, CODE_B.encode())
    content = path.read_text()
    for secret in (NEW_SIGN_PASSWORD, CODE_B):
        assert secret not in content and secret.encode().hex().upper() not in content.upper()
    # The 4-digit PIN and the old password are short enough to occur by chance in a
    # certificate's hex, so they are looked for where they would leak: the commands.
    commands = [entry["command"] for entry in apdu_lines(path)]
    for secret in (AUTH_PIN, SIGN_PASSWORD):
        assert not any(secret.encode().hex().upper() in c for c in commands)
    redacted = [entry for entry in apdu_lines(path) if "redacted" in entry]
    assert [(e["command"][:8], e["redacted"]) for e in redacted] == [
        ("00200080", [[5, 4]]),    # VERIFY auth PIN
        ("00200080", [[5, 6]]),    # VERIFY signing password
        ("00240180", [[5, 12]]),   # CHANGE REFERENCE DATA: the new password
        ("00200080", [[5, 12]]),   # VERIFY with it before signing
        ("00200080", [[5, 14]]),   # VERIFY 照合番号B
    ]
    assert all(e["command"].endswith("**" * e["redacted"][0][1]) for e in redacted)


def test_no_redact_keeps_secrets_for_private_debugging(card_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "private.jsonl"
    with SimulatorReader.for_image(card_dir).connect() as inner, \
            record(inner, path, redact=False) as conn:
        JPKIClient(conn).verify(JPKIKey.AUTH, AUTH_PIN)
    assert apdu_lines(path)[-1]["command"] == "0020008004" + AUTH_PIN.encode().hex().upper()
    assert json.loads(path.read_text().splitlines()[0])["redacted"] is False


@pytest.mark.parametrize("command, expected", [
    ("002000800431323334", (5, 4)),
    ("0020008000", None),                                 # empty VERIFY: a retry query
    ("8032008004" + "31" * 4, (5, 4)),                    # JICSAP CHANGE KEY
    ("002C000008" + "31" * 8, (5, 8)),                    # RESET RETRY COUNTER
    ("0020008000000431323334", (7, 4)),                   # extended length
    ("00200080FF3132", (4, 3)),                           # malformed: all after the header
    ("00B0000000", None),
    ("8020008004" + "31" * 4, None),                      # proprietary class, not VERIFY
])
def test_secret_ranges(command: str, expected: tuple[int, int] | None) -> None:
    assert secret_range(bytes.fromhex(command)) == expected


@pytest.fixture
def fixed_host_randomness(monkeypatch: pytest.MonkeyPatch) -> None:
    """The host's challenges (card show's INTERNAL AUTHENTICATE) fixed, so the same host code
    sends the same APDUs when recording and when replaying."""
    monkeypatch.setattr(secrets, "token_bytes", lambda n: bytes(range(n)))


def run(*args: str, env: dict[str, str] | None = None) -> str:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def exchanges(path: Path) -> list[tuple[str, str, str]]:
    return [(e["command"], e["response"], e["sw"]) for e in apdu_lines(path)]


def test_a_recorded_session_replays_byte_for_byte(card_dir: Path, tmp_path: Path,
                                                 fixed_host_randomness: None) -> None:
    show, sign = tmp_path / "show.jsonl", tmp_path / "sign.jsonl"
    message = tmp_path / "message.txt"
    message.write_bytes(b"replayed")
    shown = run("card", "show", "--card", str(card_dir), "--json", env={TRACE_ENV: str(show)})
    run("sign", "--card", str(card_dir), "--key", "auth", str(message), "--pin-env", "PIN",
        "--out", str(tmp_path / "recorded.sig"), env={TRACE_ENV: str(sign), "PIN": AUTH_PIN})
    # The same commands on the replay back end, themselves recorded: same output, same APDUs.
    again_show, again_sign = tmp_path / "again-show.jsonl", tmp_path / "again-sign.jsonl"
    replayed = run("card", "show", "--reader", f"replay:{show}", "--json",
                   env={TRACE_ENV: str(again_show)})
    run("sign", "--reader", f"replay:{sign}", "--key", "auth", str(message), "--pin-env", "PIN",
        "--out", str(tmp_path / "replayed.sig"), env={TRACE_ENV: str(again_sign), "PIN": "0000"})
    assert json.loads(replayed) == json.loads(shown)
    assert (tmp_path / "replayed.sig").read_bytes() == (tmp_path / "recorded.sig").read_bytes()
    assert len(exchanges(show)) > 10
    assert exchanges(again_show) == exchanges(show)
    # The PIN differs (0000) but was redacted in both files, so even these match.
    assert exchanges(again_sign) == exchanges(sign)


def test_replay_refuses_a_command_that_differs(card_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    reader = TracingReader(SimulatorReader.for_image(card_dir), path)
    with reader.connect() as connection:
        JPKIClient(connection).read_certificate_der(JPKIKey.AUTH)
    replay = open_reader(f"replay:{path}")
    with replay.connect() as connection:
        client = JPKIClient(connection)
        with pytest.raises(TraceMismatchError,
                           match=r"APDU #2 \(line 3\) differs(.|\n)*00A4020C02000B"):
            client.read_certificate_der(JPKIKey.AUTH, ca=True)  # EF 000B instead of 000A
    with open_reader(f"replay:{path}").connect() as connection:
        client = JPKIClient(connection)
        client.read_certificate_der(JPKIKey.AUTH)
        with pytest.raises(TraceMismatchError, match="has ended"):
            client.token_label()


def test_recorded_faults_replay_as_the_same_errors(card_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    faulty = FaultyReader(SimulatorReader.for_image(card_dir), FaultPlan(remove_after=2))
    with TracingReader(faulty, path).connect() as connection, \
            pytest.raises(CardRemovedError):
        JPKIClient(connection).verify(JPKIKey.AUTH, AUTH_PIN)
    with open_reader(f"replay:{path}").connect() as connection, \
            pytest.raises(CardRemovedError, match="replayed"):
        JPKIClient(connection).verify(JPKIKey.AUTH, "9999")


def test_resets_are_recorded_and_replayed(card_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    with TracingReader(SimulatorReader.for_image(card_dir), path).connect() as connection:
        JPKIClient(connection).verify(JPKIKey.AUTH, AUTH_PIN)
        connection.reset()
        with pytest.raises(CardCommandError):
            JPKIClient(connection).sign_digest_info(JPKIKey.AUTH, bytes(51))
    with open_reader(f"replay:{path}").connect() as connection:
        JPKIClient(connection).verify(JPKIKey.AUTH, AUTH_PIN)
        with pytest.raises(TraceMismatchError, match="recorded a reset"):
            JPKIClient(connection)


@pytest.mark.parametrize("content, message", [
    ("", "holds no session"),
    ('{"type": "apdu"}\n', "line 1"),
    ('{"type": "session", "format": "other", "version": 1, "reader": "r", "atr": ""}\n',
     "not a mynacard-apdu-trace"),
    ("not json\n", "line 1"),
])
def test_bad_trace_files_are_named(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(TraceError, match=message):
        read_trace(path)
