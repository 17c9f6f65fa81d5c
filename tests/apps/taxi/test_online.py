"""The online variant (the ledger holds eligibility and counts; the terminal sends the link
keys of the tapped authentication certificates) against the offline one (the card holds them):
the same subsidy and cap rules, and a lost card (certificate on hold) refused online."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import NOW, TERMINAL_ID
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from test_counter import T, counter, issue  # noqa: F401 - counter is a fixture
from test_counter import enrol as enrol_at_counter
from test_ledger import _ca
from test_terminal import ride as offline_ride

from mynacard.apps.taxi.keys import CityKeys
from mynacard.apps.taxi.ledger import Ledger, LedgerError, OnlineRefusal
from mynacard.apps.taxi.online import ride_online
from mynacard.apps.taxi.server import LedgerServer, ask_online_ride
from mynacard.apps.taxi.terminal import Terminal, TerminalConfig
from mynacard.cardsim.perso import reissue
from mynacard.client.recipes import RevocationConfig, tap_check
from mynacard.client.records import load_trust_anchors
from mynacard.clock import VirtualClock
from mynacard.jpki import lifecycle
from mynacard.jpki.publish import publish
from mynacard.readers.simulator import SimulatorReader

COMPANY = "前橋タクシー"
RideFn = Callable[[int, list], list[tuple[str | None, int]]]
"""(fare, riders) → per rider: (refusal value or None, subsidy)."""


@pytest.fixture
def online_ledger(tmp_path: Path, city: CityKeys) -> Iterator[Ledger]:
    ledger = Ledger(tmp_path / "ledger.db", city)
    yield ledger
    ledger.close()


@pytest.fixture(params=["offline", "online"])
def variant(request: pytest.FixtureRequest, enrolled, city: CityKeys,
            online_ledger: Ledger, clock: VirtualClock) -> tuple[Callable, RideFn]:
    """(make a rider with a yearly quota, ride) for one variant."""
    if request.param == "offline":
        terminal: Terminal = request.getfixturevalue("terminal")

        def ride(fare: int, riders: list) -> list[tuple[str | None, int]]:
            result = offline_ride(terminal, fare, *riders)
            refused = iter(o for o in result.outcomes if o.rider_id is None)
            debited = {o.rider_id: o for o in result.outcomes if o.rider_id is not None}
            # The offline terminal lists refusals first: put them back in tap order.
            order = [debited.get(_rider_of(r)) or next(refused) for r in riders]
            return [(o.refusal.reason.value if o.refusal else None,
                     o.receipt.subsidy if o.receipt else 0) for o in order]

        return (lambda quota: enrolled(yearly_quota=quota)), ride
    count = iter(range(1, 100))

    def make(quota: int) -> str:
        n = next(count)
        link_key = f"{n:040x}:{0x100 + n:x}"
        online_ledger.register(f"R{n:07d}".encode(), f"resident-{n}", 1, quota,
                               NOW - dt.timedelta(days=30), link_key=link_key)
        return link_key

    def ride(fare: int, riders: list) -> list[tuple[str | None, int]]:
        outcomes = online_ledger.online_ride(TERMINAL_ID, COMPANY, riders, fare, clock())
        return [(o.refusal.value if o.refusal else None, o.subsidy) for o in outcomes]

    return make, ride


def _rider_of(image: Path) -> str:
    return image.name.removeprefix("card-").encode().hex()


def test_one_rider_half_the_fare_up_to_1000(variant, clock: VirtualClock) -> None:
    make, ride = variant
    rider = make(70)
    assert ride(1500, [rider]) == [(None, 750)]
    clock.advance(dt.timedelta(hours=2))
    assert ride(3000, [rider]) == [(None, 1000)]


@pytest.mark.parametrize(("fare", "riders", "each"), [(3000, 2, 500), (900, 2, 450),
                                                      (1000, 3, 333)])
def test_shared_ride_500_each_never_above_the_fare(variant, fare: int, riders: int,
                                                   each: int) -> None:
    make, ride = variant
    assert ride(fare, [make(70) for _ in range(riders)]) == [(None, each)] * riders


def test_daily_and_yearly_caps(variant, clock: VirtualClock) -> None:
    make, ride = variant
    rider, other = make(3), make(70)
    for _ in range(2):
        assert ride(2000, [rider]) == [(None, 1000)]
        clock.advance(dt.timedelta(hours=1))
    # The capped rider is refused; the other rides alone: half the fare, up to ¥1,000.
    assert ride(2000, [rider, other]) == [("daily-cap", 0), (None, 1000)]
    clock.advance(dt.timedelta(days=1))
    assert ride(2000, [rider]) == [(None, 1000)]
    clock.advance(dt.timedelta(days=1))
    assert ride(2000, [rider]) == [("yearly-cap", 0)]


def test_online_refuses_unknown_and_double_taps(online_ledger: Ledger) -> None:
    online_ledger.register(b"R0000001", "resident-1", 1, 70, NOW, link_key="aa:1")
    outcomes = online_ledger.online_ride(TERMINAL_ID, COMPANY, ["aa:1", "aa:1", "bb:2"],
                                         3000, NOW)
    assert [(o.rider, o.refusal) for o in outcomes] == [
        (b"R0000001".hex(), None), (b"R0000001".hex(), OnlineRefusal.DOUBLE_TAP),
        (None, OnlineRefusal.NOT_REGISTERED)]
    assert outcomes[0].subsidy == 1000 and online_ledger.usage(b"R0000001".hex(), NOW).rides == 1
    with pytest.raises(LedgerError):
        online_ledger.online_ride(TERMINAL_ID, COMPANY, ["aa:1"], 0, NOW)


def test_lost_card_on_hold_is_refused_online(online_ledger: Ledger) -> None:
    key, ca = _ca()
    key_id = x509.SubjectKeyIdentifier.from_public_key(key.public_key()).digest.hex()
    link_key = f"{key_id}:10"
    online_ledger.register(b"R0000001", "resident-1", 1, 70, NOW - dt.timedelta(days=1),
                           link_key=link_key)
    assert online_ledger.online_ride(TERMINAL_ID, COMPANY, [link_key], 2000, NOW)[0].subsidy \
        == 1000
    held = NOW + dt.timedelta(hours=1)
    crl = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
           .last_update(held).next_update(held + dt.timedelta(days=1))
           .add_revoked_certificate(
               x509.RevokedCertificateBuilder().serial_number(0x10).revocation_date(held)
               .add_extension(x509.CRLReason(x509.ReasonFlags.certificate_hold),
                              critical=False).build())
           .sign(key, hashes.SHA256()))
    online_ledger.apply_revocations(crl, ca)
    later = online_ledger.online_ride(TERMINAL_ID, COMPANY, [link_key], 2000,
                                      held + dt.timedelta(minutes=5))
    assert [(o.refusal, o.subsidy) for o in later] == [(OnlineRefusal.STOPPED, 0)]
    assert online_ledger.usage(b"R0000001".hex(), NOW).rides == 1   # the ride before counts


def test_online_ride_through_tap_check_and_the_ledger_over_http(counter: dict) -> None:  # noqa: F811
    """A card enrolled at the counter rides online: tap_check, then POST /online-ride; after
    its loss is reported (certificate on hold) the tap refuses it before the ledger is asked."""
    card = issue(counter, "kokutou-mikiya")
    enrol_at_counter(counter, card, "A-100", "--pin-env", "PIN")
    pki, city, tmp = counter["pki"], counter["city"], counter["tmp"]
    anchors = tuple(x509.load_pem_x509_certificates((tmp / "auth-ca.pem").read_bytes()))
    cv_anchors = load_trust_anchors(pki.path / "cvc")
    config = TerminalConfig(TERMINAL_ID, COMPANY, "10201", city.terminal_key(TERMINAL_ID),
                            city.public_pem())
    ledger = Ledger(tmp / "ledger.db", city)
    server = LedgerServer("127.0.0.1", 0, ledger)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def ride(fare: int):  # noqa: ANN202
        # A fresh configuration per ride: the terminal fetches the CRL published since.
        revocation = RevocationConfig(trust_anchors=anchors)
        connection = SimulatorReader.for_image(card).connect()
        try:
            return ride_online(
                [connection], fare,
                tap=lambda c: tap_check(c, revocation, cv_anchors=cv_anchors),
                ask=lambda keys, f: ask_online_ride(config, server.url, keys, f))
        finally:
            connection.disconnect()

    try:
        (rider,) = ledger.riders_by_link().values()
        first = ride(3000)
        assert [(c.refusal, c.subsidy) for c in first] == [(None, 1000)]
        assert first[0].outcome.rider == rider
        lifecycle.report_loss(pki, reissue.card_id(card), T + dt.timedelta(hours=1))
        publish(pki, counter["crl_dir"], T + dt.timedelta(hours=1))
        lost = ride(3000)
        assert [(c.refusal, c.subsidy, c.outcome) for c in lost] == [("on-hold", 0, None)]
        assert ledger.usage(rider, dt.datetime.now(dt.UTC)).rides == 1
    finally:
        server.shutdown()
        server.server_close()
        ledger.close()


def test_ride_online_from_the_command_line(counter: dict) -> None:  # noqa: F811
    """``mynacard app taxi ride --online URL``: the tap and the ledger's answer printed; a lost
    card is refused (exit 1, the reason named) and nothing more is counted."""
    from click.testing import CliRunner

    from mynacard.cli import main

    card = issue(counter, "kokutou-mikiya")
    enrol_at_counter(counter, card, "A-100", "--pin-env", "PIN")
    pki, city, tmp = counter["pki"], counter["city"], counter["tmp"]
    config_file = tmp / "online-terminal.json"
    config_file.write_text(TerminalConfig(TERMINAL_ID, COMPANY, "10201",
                                          city.terminal_key(TERMINAL_ID),
                                          city.public_pem()).to_json())
    ledger = Ledger(tmp / "ledger.db", city)
    server = LedgerServer("127.0.0.1", 0, ledger)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    args = ["app", "taxi", "ride", "--config", str(config_file), "--db", str(tmp / "t.db"),
            "--fare", "3000", "--riders", f"sim:{card}", "--online", server.url,
            "--trust", str(tmp / "auth-ca.pem"), "--cv-trust", str(pki.path / "cvc"), "--json"]
    try:
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        assert '"subsidy": 1000' in result.output and '"online": true' in result.output
        lifecycle.report_loss(pki, reissue.card_id(card), T + dt.timedelta(hours=1))
        publish(pki, counter["crl_dir"], T + dt.timedelta(hours=1))
        refused = CliRunner().invoke(main, args)
        assert refused.exit_code == 1 and "on-hold" in refused.output
        assert "Traceback" not in refused.output
        (rider,) = ledger.riders_by_link().values()
        assert ledger.usage(rider, dt.datetime.now(dt.UTC)).rides == 1
    finally:
        server.shutdown()
        server.server_close()
        ledger.close()
