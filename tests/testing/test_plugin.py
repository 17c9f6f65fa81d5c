"""The plugin's fixtures, used here exactly as an outside project would (the plugin is loaded
through its pytest11 entry point, not by a conftest)."""

from __future__ import annotations

import datetime as dt

import pytest

from mynacard.cardsim.perso.persona import PersonError
from mynacard.client.commands import WrongPinError
from mynacard.client.jpki import JPKIClient, JPKIKey
from mynacard.jpki.validate import Policy, RevocationMethod, Verdict
from mynacard.readers import CardRemovedError, open_reader
from mynacard.readers.simulator import SimulatorReader
from mynacard.testing import PersonaSpecError, shipped_personas
from mynacard.testing.harness import persona_fields
from mynacard.testing.pcsc import pcsc_unavailable_reason

pytest_plugins = ["pytester"]

OCSP_ONLY = Policy(methods=(RevocationMethod.OCSP,))


def _auth_serial(card_dir) -> int:
    with open_reader(f"sim:{card_dir}").connect() as conn:
        return JPKIClient(conn).read_certificate(JPKIKey.AUTH).serial_number


def test_copies_of_one_persona_are_cards_of_their_own(card_factory, mynacard_harness):
    first, second = card_factory(), card_factory()
    assert _auth_serial(first) != _auth_serial(second)
    assert mynacard_harness.card_id(first) != mynacard_harness.card_id(second)
    mynacard_harness.report_loss(first)
    mynacard_harness.publish()
    validator = mynacard_harness.validator()
    with open_reader(f"sim:{first}").connect() as a, open_reader(f"sim:{second}").connect() as b:
        lost, kept = (JPKIClient(c).read_certificate(JPKIKey.AUTH) for c in (a, b))
    assert validator.validate(lost).verdict is Verdict.ON_HOLD
    assert validator.validate(kept).verdict is Verdict.VALID


def test_overrides_change_one_field_and_keep_the_others(card_factory):
    card = card_factory("kokutou-mikiya", pins={"auth": "9999"})
    with open_reader(f"sim:{card}").connect() as conn:
        client = JPKIClient(conn)
        with pytest.raises(WrongPinError):
            client.verify(JPKIKey.AUTH, "1234")
        client.verify(JPKIKey.AUTH, "9999")
        client.verify(JPKIKey.SIGN, "ABC123")  # the signing password kept its value
    fields, _ = persona_fields("kokutou-mikiya", pins={"auth": "9999"})
    assert fields["pins"] == {"auth": "9999", "sign": "ABC123", "text": "1234",
                              "resident": "1234"}


def test_personas_by_name_path_or_mapping(card_factory, mynacard_harness, tmp_path):
    assert {"kokutou-mikiya", "sato-sora-child"} <= set(shipped_personas())
    fields, _ = persona_fields("yamada-hanako")
    path = tmp_path / "hanako.yaml"
    path.write_text("name: {family: 山田, given: 花子}\naddress: 大阪府大阪市北区中之島１\n"
                    "birth_date: 1992-07-01\nsex: female\nmunicipality: {code: '27127', "
                    "prefecture: Osaka-fu, name: Osaka-shi Kita-ku}\n", encoding="utf-8")
    for spec in ("yamada-hanako", path, fields):
        assert mynacard_harness.persona(spec).resident.family_name == "山田"
    assert not mynacard_harness.persona("sato-sora-child").gets_sign_certificate


def test_bad_personas_are_clear_errors(mynacard_harness, tmp_path):
    with pytest.raises(PersonaSpecError, match="no shipped persona 'nobody'.*kokutou-mikiya"):
        mynacard_harness.card("nobody")
    with pytest.raises(PersonaSpecError, match="cannot be read"):
        mynacard_harness.card(tmp_path / "absent.yaml")
    with pytest.raises(PersonError, match="pins.auth: exactly 4 digits"):
        mynacard_harness.card(pins={"auth": "12"})


@pytest.mark.mynacard_card("yamada-hanako")
def test_the_marker_chooses_the_card(card_connection):
    JPKIClient(card_connection).verify(JPKIKey.AUTH, "8642")


def test_the_default_reader_is_in_process_and_the_card_can_be_pulled(mynacard_reader,
                                                                      card_connection):
    assert isinstance(mynacard_reader, SimulatorReader)
    client = JPKIClient(card_connection)
    client.verify(JPKIKey.AUTH, "1234")
    card = mynacard_reader.remove()
    with pytest.raises(CardRemovedError):
        client.tries_left(JPKIKey.AUTH)
    mynacard_reader.insert(card)
    with mynacard_reader.connect() as again:
        assert JPKIClient(again).tries_left(JPKIKey.AUTH) == 3


def test_the_revocation_server_answers_crl_and_ocsp(card_factory, mynacard_harness,
                                                    revocation_server):
    card = card_factory()
    assert mynacard_harness.pki.base_url == revocation_server.url
    mynacard_harness.report_death(card)
    with open_reader(f"sim:{card}").connect() as conn:
        cert = JPKIClient(conn).read_certificate(JPKIKey.AUTH)
    # OCSP sees the death at once; the CRLs served were published before it.
    ocsp = mynacard_harness.validator(crls=[], fetch=True, policy=OCSP_ONLY).validate(cert)
    assert ocsp.verdict is Verdict.REVOKED
    assert mynacard_harness.validator(crls=[], fetch=True).validate(cert).verdict is Verdict.VALID
    mynacard_harness.publish()
    assert mynacard_harness.validator(crls=[], fetch=True).validate(cert).verdict is \
        Verdict.REVOKED


def test_the_clock_drives_the_pki_and_the_validator(card_factory, mynacard_harness,
                                                    mynacard_clock, revocation_server):
    card = card_factory()
    with open_reader(f"sim:{card}").connect() as conn:
        cert = JPKIClient(conn).read_certificate(JPKIKey.AUTH)
    mynacard_clock.freeze(dt.datetime(2027, 1, 1, tzinfo=dt.UTC))
    mynacard_harness.publish()
    assert mynacard_harness.validator().validate(cert).verdict is Verdict.VALID
    mynacard_clock.advance(dt.timedelta(days=1, minutes=1))
    assert mynacard_harness.validator().validate(cert).verdict is Verdict.STALE_REVOCATION_INFO
    mynacard_clock.freeze(cert.not_valid_after_utc + dt.timedelta(seconds=1))
    assert mynacard_harness.validator().validate(cert).verdict is Verdict.EXPIRED


def test_the_clock_is_back_to_real_time_after_each_test(pytester):
    pytester.makepyfile("""
        import datetime as dt

        def test_freezes(mynacard_clock):
            mynacard_clock.freeze(dt.datetime(2030, 1, 1, tzinfo=dt.UTC))

        def test_sees_real_time(mynacard_clock, mynacard_harness):
            assert not mynacard_clock.frozen
            drift = mynacard_harness.clock() - dt.datetime.now(dt.UTC)
            assert abs(drift) < dt.timedelta(minutes=1)
    """)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_an_unknown_reader_kind_is_a_usage_error(request):
    request.node.add_marker(pytest.mark.mynacard_reader("nfc"))
    with pytest.raises(pytest.UsageError, match="mynacard_reader\\('nfc'\\): use one of sim, pcsc"):
        request.getfixturevalue("mynacard_reader")


def test_the_pcsc_reason_names_what_to_install(monkeypatch):
    monkeypatch.setattr("mynacard.testing.pcsc.PCSCD", "/nonexistent/pcscd")
    reason = pcsc_unavailable_reason()
    assert reason is not None and "pcscd (apt-get install pcscd)" in reason


def test_the_ca_generations_option_gives_each_ca_several_keys(pytester):
    pytester.makeini("[pytest]\nmynacard_ca_generations = 2\n")
    pytester.makepyfile("""
        from mynacard.client.jpki import JPKIClient, JPKIKey
        from mynacard.jpki.profile import AUTH_CA, SIGN_CA
        from mynacard.jpki.validate import Verdict

        def test_two_generations(mynacard_pki, mynacard_harness, card_connection,
                                 revocation_server):
            for kind in (AUTH_CA, SIGN_CA):
                assert [ca.generation for ca in mynacard_pki.generations(kind)] == [1, 2]
            assert len(mynacard_pki.link_certificates(AUTH_CA)) == 2
            cert = JPKIClient(card_connection).read_certificate(JPKIKey.AUTH)
            assert mynacard_harness.validator().validate(cert).verdict is Verdict.VALID
    """)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_the_faults_marker_pulls_the_card_and_the_same_seed_repeats(pytester):
    pytester.makepyfile("""
        import pytest
        from mynacard.client.jpki import JPKIClient, JPKIKey
        from mynacard.readers.base import CardRemovedError

        @pytest.mark.mynacard_faults("remove-after=3,seed=7")
        def test_removed(mynacard_reader):
            with pytest.raises(CardRemovedError):
                with mynacard_reader.connect() as conn:
                    client = JPKIClient(conn)
                    for _ in range(3):
                        client.tries_left(JPKIKey.AUTH)
            assert [e.kind for e in mynacard_reader.events] == ["removed"]
    """)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_the_trace_fixture_records_the_test_with_the_pin_redacted(pytester):
    pytester.makepyfile("""
        import json
        from mynacard.client.jpki import JPKIClient, JPKIKey

        def test_recorded(card_connection, mynacard_trace):
            JPKIClient(card_connection).sign(JPKIKey.AUTH, b"hello", pin="1234")
            card_connection.disconnect()
            lines = [json.loads(l) for l in mynacard_trace.read_text().splitlines()]
            verify = [l for l in lines if l.get("command", "").startswith("002000")]
            assert verify and all("31323334" not in l["command"] for l in verify)
            assert any(l.get("command", "").startswith("802A") for l in lines)
    """)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_the_trace_dir_option_records_every_test(pytester, tmp_path):
    pytester.makepyfile("""
        from mynacard.client.jpki import JPKIClient, JPKIKey

        def test_one(card_connection):
            JPKIClient(card_connection).tries_left(JPKIKey.AUTH)
    """)
    traces = tmp_path / "traces"
    pytester.runpytest("-p", "no:cacheprovider", f"--mynacard-trace-dir={traces}"
                       ).assert_outcomes(passed=1)
    (recorded,) = traces.glob("*.jsonl")
    assert "test_one" in recorded.name and '"apdu"' in recorded.read_text()
