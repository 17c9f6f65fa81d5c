"""Bad persona files are refused with the field and the rule, and leave no card behind."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from helpers import PERSONAS, TEST_TODAY

from mynacard.cardsim.perso.persona import PersonError, load_persona, parse_persona
from mynacard.cli import main
from mynacard.facts.person import validate_my_number


def base() -> dict[str, Any]:
    return yaml.safe_load((PERSONAS / "kokutou-mikiya.yaml").read_text(encoding="utf-8"))


def with_change(path: str, value: Any) -> dict[str, Any]:
    data = base()
    node = data
    *parents, last = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    if value is None:
        node.pop(last, None)
    else:
        node[last] = value
    return data


@pytest.mark.parametrize("path, value, field, rule", [
    ("name.family", None, "name.family", "is required"),
    ("birth_date", "17/02/1980", "birth_date", "YYYY-MM-DD"),
    ("birth_date", "2099-01-01", "birth_date", "future"),
    ("sex", "m", "sex", "must be one of"),
    ("my_number", "537686677189", "my_number", "check digit"),
    ("my_number", "5376866771", "my_number", "12 ASCII digits"),
    ("municipality.code", "1322", "municipality.code", "5 digits"),
    ("municipality.name", "清瀬市", "municipality.name", "romaji"),
    ("pins.auth", "12345", "pins.auth", "exactly 4 digits"),
    ("pins.sign", "abc123", "pins.sign", "at least one letter and one digit"),
    ("pins.sign", "ABCDEFG", "pins.sign", "at least one letter and one digit"),
    ("card.atr", "nope", "card.atr", "must be one of"),
    ("card.expiry", "2020-01-01", "card.expiry", "after card.issued"),
    ("card.security_code", "12a4", "card.security_code", "4 digits"),
    ("name.given", "幹 也", "name.given", "spaces"),
])
def test_each_rule_names_its_field(path: str, value: Any, field: str, rule: str) -> None:
    with pytest.raises(PersonError) as caught:
        parse_persona(with_change(path, value), TEST_TODAY)
    assert caught.value.field == field
    assert rule in str(caught.value)


def test_defaults_generate_a_valid_my_number_and_ten_year_expiry() -> None:
    persona = parse_persona(with_change("my_number", None) | {"card": {"issued": "2025-10-27"}},
                            TEST_TODAY)
    validate_my_number(persona.my_number)
    assert persona.card_expiry == dt.date(2035, 2, 17)  # 10th birthday after issuance


def test_minors_get_a_five_year_card() -> None:
    persona = load_persona(PERSONAS / "sato-sora-child.yaml", TEST_TODAY)
    assert persona.card_expiry == dt.date(2030, 5, 5)
    assert not persona.gets_sign_certificate


@pytest.mark.parametrize("content, rule", [
    (b"- just\n- a list\n", "mapping"),
    (b"name: [unclosed\n", "not valid YAML"),
    (b"\xff\xfe\x00garbage", "UTF-8"),
])
def test_unreadable_files(tmp_path: Path, content: bytes, rule: str) -> None:
    target = tmp_path / "p.yaml"
    target.write_bytes(content)
    with pytest.raises(PersonError, match=rule):
        load_persona(target, TEST_TODAY)


def test_every_bundled_persona_is_valid() -> None:
    for path in PERSONAS.glob("*.yaml"):
        load_persona(path, TEST_TODAY)


def test_cli_refuses_a_bad_persona_without_a_traceback_or_a_card(tmp_path: Path,
                                                                 pki_dir: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(with_change("pins.auth", "12")), encoding="utf-8")
    out = tmp_path / "card"
    result = CliRunner().invoke(main, ["card", "issue", str(bad), "--out", str(out),
                                       "--pki", str(pki_dir)])
    assert result.exit_code == 1
    assert "pins.auth: exactly 4 digits" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()
