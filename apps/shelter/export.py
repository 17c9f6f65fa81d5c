"""Exports for the municipality (municipal-apps.md §4.3–4.5): the roster CSV by shelter and
household, counts by age band and needs for supplies, and the 安否情報 list restricted field
by field to what each evacuee agreed to disclose. No export ever holds a My Number.
"""

from __future__ import annotations

import csv
import datetime as dt
import io

from .model import AGE_BANDS, CONSENT_FIELDS, NEEDS, SEX_LABELS, age_on
from .store import RosterStore

JST = dt.timezone(dt.timedelta(hours=9))


def _csv(header: list[str], rows: list[list[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def roster_csv(store: RosterStore, today: dt.date, shelter_id: str | None = None) -> str:
    """Staff only: includes 要配慮 needs."""
    names = {s.id: s.name for s in store.shelters()}
    rows = [[row.shelter_id, names.get(row.shelter_id, ""), row.household_id, row.person.id,
             row.person.name, row.person.name_kana,
             row.person.birth_date.isoformat() if row.person.birth_date else "",
             age_on(row.person.birth_date, today) if row.person.birth_date else "",
             SEX_LABELS.get(row.person.sex, row.person.sex), row.person.address_card,
             row.person.address_current, row.person.source.value,
             "確認済" if row.person.card_verified else "未確認",
             "・".join(NEEDS[n] for n in row.person.needs),
             "在所" if row.present else "退所", row.since.astimezone(JST).isoformat(),
             row.moved_from or ""]
            for row in store.roster(shelter_id)]
    return _csv(["避難所ID", "避難所名", "世帯番号", "個人ID", "氏名", "ふりがな", "生年月日",
                 "年齢", "性別", "住所（券面）", "現住所", "取得方法", "券面確認", "要配慮", "状況",
                 "日時", "移動元"], rows)


def counts_csv(store: RosterStore, today: dt.date) -> str:
    rows = []
    for shelter in store.shelters():
        counts = store.counts(shelter.id, today)
        rows.append([shelter.id, shelter.name, counts.present, counts.households,
                     *(counts.by_age_band.get(band, 0) for band, _, _ in AGE_BANDS),
                     counts.by_age_band.get("unknown", 0),
                     *(counts.by_need[need] for need in NEEDS), counts.day_visits])
    return _csv(["避難所ID", "避難所名", "在所人数", "世帯数",
                 *(f"{band}歳" for band, _, _ in AGE_BANDS), "年齢不明",
                 *NEEDS.values(), "日中来所"], rows)


def safety_csv(store: RosterStore) -> str:
    """安否情報: only people who agreed to disclose their name; address and status only when
    agreed too. Needs, birth dates and household links are never in it."""
    names = {s.id: s.name for s in store.shelters()}
    rows = []
    for row in store.roster():
        consent = set(row.person.consent)
        if "name" not in consent:
            continue
        rows.append([row.person.name,
                     (row.person.address_current or row.person.address_card)
                     if "address" in consent else "",
                     (f"{names.get(row.shelter_id, row.shelter_id)}に"
                      + ("避難中" if row.present else "退所済み")) if "status" in consent else ""])
    return _csv([CONSENT_FIELDS["name"], CONSENT_FIELDS["address"], CONSENT_FIELDS["status"]],
                rows)
