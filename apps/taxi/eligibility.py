"""Who may ride マイタク: the city's resident and welfare records, and the decision from them.

The card does not carry any of this: the counter reads the city's records (an export of the
resident register joined with the welfare files, JSON or CSV, one row per resident) and
decides. The rules are 前橋市's (municipal-apps.md §3.1): a resident of the city and one of

1. 75 or older;
2. 65 or older without a driving licence;
3. a disability certificate (身体・知的・精神・発達), 要介護・要支援, 難病, 小児慢性特定疾病,
   or 妊産婦 (pregnancy up to the end of the postnatal period);
4. a driving licence voluntarily returned.

The first rule that holds gives the category written on the card (a code only: category 3
never says which condition). A registration runs to the end of the fiscal year (31 March),
or to the end of the 妊産婦 period when that is the only ground.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import dataclass
from pathlib import Path

from ...errors import MynacardError

DISABILITIES = ("身体", "知的", "精神", "発達")
CARE_LEVELS = ("要支援1", "要支援2", "要介護1", "要介護2", "要介護3", "要介護4", "要介護5")
STATUSES = ("resident", "moved-out", "deceased")
FIELDS = ("resident", "name", "birth_date", "status", "driving_licence", "licence_returned",
          "disability", "care_level", "intractable_disease", "child_chronic_disease",
          "pregnancy_until")
"""Columns of the records file (CSV header, or keys of each JSON object); only ``resident``,
``name`` and ``birth_date`` are required."""


class RecordsError(MynacardError):
    """The records file cannot be read, or names no such resident."""


class NotEligible(MynacardError):
    """The resident meets none of the rules; ``failed`` names each rule and why it fails."""

    def __init__(self, resident: str, failed: list[str]) -> None:
        super().__init__(f"resident {resident} is not eligible for マイタク: "
                         + "; ".join(failed))
        self.failed = failed


@dataclass(frozen=True)
class ResidentRecord:
    resident: str
    """The city's opaque resident key (宛名番号), never the My Number."""
    name: str
    """As on the card: family and given name separated by U+3000."""
    birth_date: dt.date
    status: str = "resident"
    driving_licence: bool = False
    licence_returned: bool = False
    disability: str | None = None
    care_level: str | None = None
    intractable_disease: bool = False
    child_chronic_disease: bool = False
    pregnancy_until: dt.date | None = None
    """Last day of the 妊産婦 period (pregnancy and the postnatal year the city grants)."""


@dataclass(frozen=True)
class Decision:
    category: int
    rule: str
    valid_from: dt.date
    valid_to: dt.date


def age_on(birth: dt.date, day: dt.date) -> int:
    """Age in completed years (a 29 February birthday turns on 1 March in other years)."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def fiscal_year_end(day: dt.date) -> dt.date:
    return dt.date(day.year + (day.month >= 4), 3, 31)


def decide(record: ResidentRecord, today: dt.date) -> Decision:
    """The category and validity of a registration made ``today``, or ``NotEligible``."""
    if record.status != "resident":
        raise NotEligible(record.resident, [f"not a resident of the city ({record.status})"])
    age = age_on(record.birth_date, today)
    end = fiscal_year_end(today)
    if age >= 75:
        return Decision(1, "① 75 or older", today, end)
    if age >= 65 and not record.driving_licence:
        return Decision(2, "② 65 or older without a driving licence", today, end)
    if record.licence_returned:
        return Decision(4, "④ driving licence voluntarily returned", today, end)
    welfare = [ground for ground, holds in (
        (f"障害者手帳 ({record.disability})", record.disability is not None),
        (record.care_level or "", record.care_level is not None),
        ("難病", record.intractable_disease),
        ("小児慢性特定疾病", record.child_chronic_disease)) if holds]
    if welfare:
        return Decision(3, "③ " + ", ".join(welfare), today, end)
    if record.pregnancy_until is not None and record.pregnancy_until >= today:
        return Decision(3, "③ 妊産婦", today, min(end, record.pregnancy_until))
    raise NotEligible(record.resident, [
        f"① 75 or older: aged {age}",
        "② 65 or older without a driving licence: "
        + (f"aged {age}" if age < 65 else "holds a driving licence"),
        "③ disability, care level, 難病, 小児慢性特定疾病 or 妊産婦: none on record"
        + (f" (妊産婦 period ended {record.pregnancy_until})" if record.pregnancy_until
           else ""),
        "④ driving licence returned: not on record"])


def _flag(value: object, column: str, resident: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value or "").strip().lower()
    if text in ("", "0", "no", "false", "n"):
        return False
    if text in ("1", "yes", "true", "y"):
        return True
    raise RecordsError(f"resident {resident}: {column} must be yes or no, not {value!r}")


def _choice(value: object, allowed: tuple[str, ...], column: str, resident: str) -> str | None:
    text = str(value or "").strip()
    if not text or text == "none":
        return None
    if text not in allowed:
        raise RecordsError(f"resident {resident}: {column} must be one of "
                           f"{', '.join(allowed)}, not {text!r}")
    return text


def _date(value: object, column: str, resident: str) -> dt.date | None:
    text = str(value or "").strip()
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise RecordsError(f"resident {resident}: {column} must be YYYY-MM-DD, not {text!r}"
                           ) from None


def parse_record(row: dict[str, object]) -> ResidentRecord:
    unknown = set(row) - set(FIELDS)
    if unknown:
        raise RecordsError(f"unknown column(s) {', '.join(sorted(unknown))}; "
                           f"expected {', '.join(FIELDS)}")
    resident = str(row.get("resident") or "").strip()
    name = str(row.get("name") or "").strip()
    if not resident or not name:
        raise RecordsError("every record needs a resident key and a name")
    birth = _date(row.get("birth_date"), "birth_date", resident)
    if birth is None:
        raise RecordsError(f"resident {resident}: birth_date is required")
    status = _choice(row.get("status"), STATUSES, "status", resident) or "resident"
    return ResidentRecord(
        resident, name, birth, status,
        _flag(row.get("driving_licence"), "driving_licence", resident),
        _flag(row.get("licence_returned"), "licence_returned", resident),
        _choice(row.get("disability"), DISABILITIES, "disability", resident),
        _choice(row.get("care_level"), CARE_LEVELS, "care_level", resident),
        _flag(row.get("intractable_disease"), "intractable_disease", resident),
        _flag(row.get("child_chronic_disease"), "child_chronic_disease", resident),
        _date(row.get("pregnancy_until"), "pregnancy_until", resident))


def load_records(path: Path) -> dict[str, ResidentRecord]:
    """The records file (``.json``: a list of objects; anything else: CSV with a header), by
    resident key."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordsError(f"cannot read the records file {path}: {exc}") from None
    if path.suffix.lower() == ".json":
        try:
            rows = json.loads(text)
        except ValueError as exc:
            raise RecordsError(f"{path} is not JSON: {exc}") from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise RecordsError(f"{path} must hold a JSON list of objects")
    else:
        rows = list(csv.DictReader(io.StringIO(text)))
    records: dict[str, ResidentRecord] = {}
    for row in rows:
        record = parse_record(row)
        if record.resident in records:
            raise RecordsError(f"resident {record.resident} appears twice in {path}")
        records[record.resident] = record
    return records
