"""The roster on SQLite and PostgreSQL: households opened at the first member, a repeat
check-in shown not recorded, a move between shelters, counts, consent, and merges that are
idempotent and order-independent."""

from __future__ import annotations

import datetime as dt

import pytest

from mynacard.apps.shelter.card import manual_facts
from mynacard.apps.shelter.export import counts_csv, roster_csv, safety_csv
from mynacard.apps.shelter.model import EventKind, Facts, ShelterError, Source
from mynacard.apps.shelter.store import RosterStore

NOW = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)
TODAY = dt.date(2026, 11, 23)


def card_facts(name: str, birth: dt.date, sex: str = "1") -> Facts:
    return Facts(name, "東京都清瀬市中里５丁目", birth, sex, Source.CARD_B, True)


def device(url: str, name: str) -> RosterStore:
    store = RosterStore(url, name)
    store.add_shelter("S1", "第一小学校", NOW)
    store.add_shelter("S2", "市民センター", NOW)
    return store


def test_household_repeat_check_in_and_check_out(db_url: str) -> None:
    store = device(db_url, "d1")
    father = store.register(card_facts("黒桐　幹也", dt.date(1980, 2, 17)), "S1", NOW,
                            needs=("medication",), consent=("name", "status"))
    mother = store.register(card_facts("黒桐　鮮花", dt.date(1982, 3, 1), "2"), "S1", NOW,
                            household_id=father.household_id)
    child = store.register(manual_facts("黒桐 そら", "", dt.date(2024, 5, 5), "2"), "S1", NOW,
                           household_id=father.household_id, needs=("infant",))
    household = store.household(father.household_id)
    assert household.head_person_id == father.id
    assert [m.id for m in household.members] == [father.id, mother.id, child.id]
    for person in (father, mother, child):
        assert store.check_in(person.id, "S1", NOW).event is not None
    again = store.check_in(father.id, "S1", NOW + 5 * MIN)
    assert again.repeat and again.already_since == NOW
    # The same person read again (name spacing differs) is the same roster record.
    assert store.register(card_facts("黒桐 幹也", dt.date(1980, 2, 17)), "S1", NOW).id == father.id
    assert len(store.events()) == 3
    counts = store.counts("S1", TODAY)
    assert (counts.present, counts.households, counts.unverified) == (3, 1, 1)
    assert counts.by_age_band == {"18-64": 2, "0-5": 1}
    assert counts.by_need["infant"] == 1 and counts.by_need["medication"] == 1
    store.check_out(mother.id, "S1", NOW + 10 * MIN)
    with pytest.raises(ShelterError, match="入所していません"):
        store.check_out(mother.id, "S1", NOW + 11 * MIN)
    assert store.counts("S1", TODAY).present == 2
    roster = roster_csv(store, TODAY)
    assert roster.count("\r\n") == 4 and "退所" in roster and "服薬" in roster
    safety = safety_csv(store)
    assert "黒桐　幹也" in safety and "第一小学校に避難中" in safety
    assert "鮮花" not in safety and "服薬" not in safety and "中里" not in safety
    assert counts_csv(store, TODAY).splitlines()[1].startswith("S1,第一小学校,2,1,")
    store.close()


def test_a_person_seen_at_another_shelter_is_a_movement(db_url: str) -> None:
    store = device(db_url, "d1")
    person = store.register(card_facts("両儀　式", dt.date(1981, 3, 3), "2"), "S1", NOW)
    store.check_in(person.id, "S1", NOW)
    moved = store.check_in(person.id, "S2", NOW + MIN)
    assert moved.movement_from == "S1"
    assert [r.shelter_id for r in store.roster()] == ["S2"]
    assert store.roster()[0].moved_from == "S1"
    visit = store.record_visit(person.id, "S1", EventKind.DAY_VISIT, NOW + 2 * MIN)
    assert visit.kind is EventKind.DAY_VISIT and store.presence(person.id).event.shelter_id == "S2"
    store.close()


def test_merges_are_idempotent_and_find_people_across_devices(db_url: str, tmp_path) -> None:
    a = device(str(tmp_path / "a.db"), "dev-a")
    b = device(str(tmp_path / "b.db"), "dev-b")
    pa = a.register(card_facts("黒桐　幹也", dt.date(1980, 2, 17)), "S1", NOW)
    a.check_in(pa.id, "S1", NOW)
    pb = b.register(card_facts("黒桐　幹也", dt.date(1980, 2, 17)), "S2", NOW + MIN)
    b.check_in(pb.id, "S2", NOW + 2 * MIN)
    hq = RosterStore(db_url, "hq")
    for _ in range(2):
        for records in (b.own_records(), a.own_records()):
            hq.merge(records)
    assert len(hq.events()) == 2
    roster = hq.roster()
    assert len(roster) == 1 and roster[0].shelter_id == "S2"  # one person, merged by key
    assert hq.merge(a.own_records()).events_added == 0
    a.update_person(pa.id, NOW + 3 * MIN, address_current="避難先: 親戚宅")
    assert hq.merge(a.own_records()).rows_changed == 1
    assert hq.person(pa.id).address_current == "避難先: 親戚宅"
    for store in (a, b, hq):
        store.close()
