"""Each strategy of mynacard.testing.strategies produces what it claims: valid values satisfy
the rule (checked against the card and the codec where there is one), invalid ones break it."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mynacard.cardsim.card import VirtualCard
from mynacard.cardsim.perso.persona import parse_persona
from mynacard.client.commands import select_ef
from mynacard.client.jpki import JPKIClient, JPKIKey
from mynacard.client.text import TextClient
from mynacard.facts import jpki
from mynacard.facts.person import ERAS, era_of, validate_my_number
from mynacard.facts.pins import AUTH_PIN, BIRTH_KEY, CODE_A, CODE_B, SIGN_PASSWORD
from mynacard.facts.text import BasicFour
from mynacard.iso7816.apdu import APDUFormatError, CommandAPDU
from mynacard.jpki import lifecycle
from mynacard.jpki.ca import SimulatorPKI, new_rsa_key
from mynacard.jpki.crlindex import CRLIndex
from mynacard.jpki.profile import AUTH_CA
from mynacard.jpki.publish import sign_crl
from mynacard.jpki.store import Role, Status
from mynacard.readers.simulator import SimulatorReader
from mynacard.testing import strategies as mst

TODAY = dt.date(2026, 11, 23)
FAST = settings(max_examples=40, derandomize=True, deadline=None)
# The card comes from a function-scoped fixture but each example makes its own copy.
WITH_CARDS = settings(max_examples=12, derandomize=True, deadline=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture])

KANJI = re.compile(r"[\u4e00-\u9fff]+")
KANA = re.compile(r"[\u3041-\u3096]+|[\u30a1-\u30fa]+")
CAPITALS = re.compile(r"[A-Z]+")


def _parsed(mapping):
    return parse_persona(mapping, today=TODAY)


@pytest.mark.parametrize(("kind", "alphabet"), [("kanji", KANJI), ("kana", KANA),
                                                ("foreign", CAPITALS)])
@FAST
@given(data=st.data())
def test_persona_names_are_in_the_claimed_script(kind, alphabet, data):
    persona = _parsed(data.draw(mst.personas(today=TODAY, kind=kind)))
    assert alphabet.fullmatch(persona.resident.family_name)
    assert alphabet.fullmatch(persona.resident.given_name)
    validate_my_number(persona.my_number)


@FAST
@given(mst.personas(today=TODAY, kind="long-address"))
def test_long_addresses_make_the_four_facts_record_pass_127_bytes(mapping):
    resident = _parsed(mapping).resident
    value = resident.address.encode("utf-8")
    record = BasicFour(resident.name, resident.address, resident.birth_date, resident.sex.value)
    assert len(value) > mst.RECORD_SHORT_FORM_MAX
    assert len(record.encode()) > mst.RECORD_SHORT_FORM_MAX


@FAST
@given(mst.era_boundary_dates())
def test_era_boundary_dates_sit_on_a_change_of_era(day):
    first_days = {era.first_day for era in ERAS}
    assert day in first_days or day + dt.timedelta(days=1) in first_days
    if day + dt.timedelta(days=1) in first_days:
        assert era_of(day) != era_of(day + dt.timedelta(days=1))


def test_era_boundaries_cover_every_change_of_era():
    days = set(mst.ERA_BOUNDARY_DATES)
    for era in ERAS:
        assert era.first_day in days
        if era is not ERAS[0]:
            assert era.first_day - dt.timedelta(days=1) in days
    assert len(days) == 2 * len(ERAS) - 1


@FAST
@given(mst.personas(today=TODAY, kind="leap-day"))
def test_leap_day_births_expire_on_28_february_in_common_years(mapping):
    persona = _parsed(mapping)
    born = persona.resident.birth_date
    assert (born.month, born.day) == (2, 29)
    expiry = persona.card_expiry
    leap = expiry.year % 4 == 0 and (expiry.year % 100 != 0 or expiry.year % 400 == 0)
    assert (expiry.month, expiry.day) == ((2, 29) if leap else (2, 28))


@FAST
@given(mst.personas(today=TODAY, kind="child"))
def test_children_are_under_15_and_get_no_signing_certificate(mapping):
    persona = _parsed(mapping)
    assert persona.age_on(persona.issued) < mst.CHILD_AGE_LIMIT
    assert not persona.gets_sign_certificate


@FAST
@given(mst.personas(today=TODAY, kind="era-boundary"))
def test_era_boundary_personas_are_born_on_a_boundary(mapping):
    born = _parsed(mapping).resident.birth_date
    assert era_of(born) != era_of(born + dt.timedelta(days=1)) or born in {
        era.first_day for era in ERAS}


@settings(max_examples=1, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_hard_personas_issue_and_read_back_through_the_text_ap(data, card_factory,
                                                                mynacard_harness):
    """The hardest persona kinds become cards whose 4 facts a host reads back intact."""
    for kind in ("long-address", "era-boundary", "foreign"):
        mapping = data.draw(mst.personas(kind=kind))
        resident = mynacard_harness.persona(mapping).resident
        card_dir = card_factory(mapping)
        with SimulatorReader.for_image(card_dir).connect() as conn:
            four = TextClient(conn, mynacard_harness.cv_trust_anchors()).read(
                pin=mapping["pins"]["text"]).basic_four
        assert four is not None
        assert (four.name, four.address, four.birth_date) == (
            resident.name, resident.address, resident.birth_date)


POLICIES = [AUTH_PIN, SIGN_PASSWORD, CODE_A, CODE_B, BIRTH_KEY]
POLICY_IDS = ["auth-pin", "sign-password", "code-a", "code-b", "birth-key"]


@pytest.mark.parametrize("policy", POLICIES, ids=POLICY_IDS)
@FAST
@given(data=st.data())
def test_valid_pins_are_accepted_by_their_policy(policy, data):
    assert policy.accepts(data.draw(mst.valid_pins(policy)).encode("ascii"))


def _breaks(rule: str, value: str, policy) -> bool:
    """The named rule, checked independently of the policy's regular expression."""
    digits = re.fullmatch(r"\[0-9\]\{(\d+)\}", policy.pattern)
    size = int(digits.group(1)) if digits else None
    return {
        "too short": len(value) < (size or mst.PASSWORD_MIN),
        "too long": len(value) > (size or mst.PASSWORD_MAX),
        "not only digits": any(c not in "0123456789" for c in value),
        "no digit": not any(c.isdigit() for c in value),
        "no letter": not any(c.isalpha() for c in value),
        "lower case or other characters": any(c not in mst.PASSWORD_CHARS for c in value),
    }[rule]


@pytest.mark.parametrize("policy", POLICIES, ids=POLICY_IDS)
@FAST
@given(data=st.data())
def test_each_violation_breaks_its_rule_and_is_refused(policy, data):
    for rule, strategy in mst.pin_violations(policy).items():
        value = data.draw(strategy, label=rule)
        assert _breaks(rule, value, policy), (rule, value)
        assert not policy.accepts(value.encode("utf-8")), (rule, value)


def test_every_rule_of_the_signing_password_has_a_violation():
    assert set(mst.pin_violations(SIGN_PASSWORD)) == {
        "too short", "too long", "no digit", "no letter", "lower case or other characters"}


@WITH_CARDS
@given(attempts=mst.pin_attempts("1234"))
def test_pin_attempts_drive_the_card_counter_as_the_model_says(attempts, card_factory):
    expected = mst.expected_tries_left(attempts, "1234", AUTH_PIN.max_tries)
    card = VirtualCard.open(card_factory())
    try:
        with SimulatorReader(card=card).connect() as conn:
            client = JPKIClient(conn)
            before = AUTH_PIN.max_tries
            for attempt, after in zip(attempts, expected, strict=True):
                select_ef(conn, jpki.EF_AUTH_PIN)
                answer = conn.transmit(CommandAPDU(0x00, 0x20, 0x00, 0x80,
                                                   attempt.encode())).sw
                if before == 0:
                    assert answer == 0x6984
                elif attempt == "1234":
                    assert answer == 0x9000
                else:
                    assert answer == 0x63C0 | after
                assert client.tries_left(JPKIKey.AUTH) == after
                before = after
    finally:
        card.close()


@FAST
@given(mst.wrong_pin_sequences("1234"))
def test_wrong_pin_sequences_straddle_the_lockout(sequence):
    assert "1234" not in sequence
    assert AUTH_PIN.max_tries - 1 <= len(sequence) <= AUTH_PIN.max_tries + 2
    assert all(AUTH_PIN.accepts(pin.encode()) for pin in sequence)
    assert mst.expected_tries_left(sequence, "1234", 3)[-1] == max(3 - len(sequence), 0)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(mst.command_apdus())
def test_well_formed_apdus_parse_and_encode_back(raw):
    assert CommandAPDU.parse(raw).encode() == raw


@pytest.fixture(scope="module")
def idle_card(tmp_path_factory, mynacard_harness) -> VirtualCard:
    card = VirtualCard.open(mynacard_harness.card(out=tmp_path_factory.mktemp("idle") / "c"))
    card.power_on()
    yield card
    card.close()


@settings(max_examples=200, derandomize=True, deadline=None)
@given(raw=mst.malformed_apdus())
def test_malformed_apdus_are_refused_with_6700_and_the_card_carries_on(raw, idle_card):
    with pytest.raises(APDUFormatError):
        CommandAPDU.parse(raw)
    assert idle_card.transmit(raw) == bytes.fromhex("6700")
    assert idle_card.transmit(bytes.fromhex("00A4040C0AD392F000260100000001")) == b"\x90\x00"


@pytest.fixture(scope="module")
def two_keys():
    """Card public keys reused by every example (key generation is the slow part)."""
    return new_rsa_key().public_key(), new_rsa_key().public_key()


@pytest.fixture(scope="module")
def private_pki() -> SimulatorPKI:
    """Expiry marks every certificate of a store past its date: keep it off the session PKI."""
    return SimulatorPKI.create()


def _apply(pki: SimulatorPKI, events: list[str], keys, resident) -> str:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    card_id = None
    for event in events:
        now += dt.timedelta(days=1)
        if event == "issue":
            card_id = lifecycle.issue_card(pki, resident, *keys, now,
                                           (now + dt.timedelta(days=3 * 365)).date()).card_id
        elif event == "renew":
            lifecycle.renew(pki, card_id, *keys, now)
        elif event == "move":
            lifecycle.change_resident(pki, card_id, resident, keys[1], now)
        elif event == "loss":
            lifecycle.report_loss(pki, card_id, now)
        elif event == "found":
            lifecycle.card_found(pki, card_id, now)
        elif event == "death":
            lifecycle.death(pki, card_id, now)
        else:
            assert event == "expiry"
            now = max(r.certificate.not_valid_after_utc
                      for r in pki.store.card_certificates(card_id)) + dt.timedelta(days=1)
            lifecycle.expire(pki, now)
    return card_id


@settings(max_examples=25, derandomize=True, deadline=None)
@given(events=mst.lifecycle_events())
def test_lifecycle_sequences_are_ones_the_pki_accepts(events, private_pki, two_keys,
                                                      mynacard_harness):
    assert events[0] == "issue"
    state = "new"
    for event in events:
        assert event in mst.LIFECYCLE_TRANSITIONS[state]
        state = mst.STATE_AFTER[event]
    resident = mynacard_harness.persona().resident
    card_id = _apply(private_pki, events, two_keys, resident)
    current = {r.role: r.status for r in lifecycle.live_certificates(private_pki, card_id)}
    expected = {"active": {Role.AUTH: Status.GOOD, Role.SIGN: Status.GOOD},
                "lost": {Role.AUTH: Status.HOLD, Role.SIGN: Status.HOLD},
                "found": {}, "dead": {}, "expired": {}}[state]
    assert current == expected


@settings(max_examples=30, derandomize=True, deadline=None)
@given(entries=mst.crl_entries(), absent=st.integers(1, 2**159 - 1))
def test_crl_entries_come_back_from_a_signed_crl(entries, absent, mynacard_pki):
    now = dt.datetime.now(dt.UTC)
    crl = sign_crl(mynacard_pki.ca(AUTH_CA), entries, 1, now, now + dt.timedelta(days=1))
    index = CRLIndex.load(crl.public_bytes(serialization.Encoding.DER))
    for entry in entries:
        found = index.lookup(entry.serial)
        assert found is not None and found.revocation_date == entry.revocation_date
        unspecified = entry.reason is x509.ReasonFlags.unspecified
        assert found.reason == (None if unspecified else entry.reason)
        assert found.invalidity_date == entry.invalidity_date
    if absent not in {e.serial for e in entries}:
        assert index.lookup(absent) is None
