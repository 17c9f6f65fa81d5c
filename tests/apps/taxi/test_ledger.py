"""The マイタク city ledger on SQLite and PostgreSQL: receipt MACs, de-duplication, stopped
registrations, two taxis, the claim CSV, the fiscal-year reset, and many terminals syncing at
once from separate processes (released together by a barrier) with overlapping uploads."""

from __future__ import annotations

import csv
import datetime as dt
import io
import multiprocessing

import pytest
from conftest import NOW
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mynacard.apps.taxi.keys import CityKeys
from mynacard.apps.taxi.ledger import Flag, Ledger, LedgerError, Rejection, StopReason
from mynacard.apps.taxi.terminal import ride_time
from mynacard.facts import taxi

MINUTE = dt.timedelta(minutes=1)


def receipt(keys: CityKeys, rider: bytes, sequence: int, when: dt.datetime, *,
            terminal: bytes = b"TAXI0001", fare: int = 3000, riders: int = 1) -> bytes:
    """What a genuine card answers: only the city and the card hold the receipt key."""
    ride = taxi.RideRequest(terminal, sequence, ride_time(when), fare, riders)
    body = taxi.Receipt(sequence, ride, taxi.subsidy(fare, riders, 1000, 500), b"").body()
    return body + taxi.receipt_mac(keys.receipt_key(rider), rider, body)


def rider(n: int) -> bytes:
    return f"R{n:07d}".encode()


@pytest.fixture
def ledger(db_url: str, city: CityKeys) -> Ledger:
    made = Ledger(db_url, city)
    for n in range(1, 4):
        made.register(rider(n), f"resident-{n}", 1, 70, NOW - 30 * dt.timedelta(days=1))
    yield made
    made.close()


def test_receipts_are_verified_and_counted_once(ledger: Ledger, city: CityKeys) -> None:
    one, two = rider(1), rider(2)
    first = receipt(city, one, 1, NOW)
    tampered = bytearray(receipt(city, two, 1, NOW))
    tampered[4 + 24] ^= 0x01                   # the fare, raised by the tablet
    forged = receipt(CityKeys.generate(), two, 2, NOW)   # a MAC under another key
    outcome = ledger.sync(b"TAXI0001", "前橋タクシー",
                          [(one.hex(), first), (two.hex(), bytes(tampered)),
                           (two.hex(), forged), (one.hex(), b"\x00" * 5)], NOW)
    assert outcome.accepted == [(one.hex(), 1)]
    assert [(r, why) for r, _, why in outcome.rejected] == [
        (two.hex(), Rejection.BAD_MAC), (two.hex(), Rejection.BAD_MAC),
        (one.hex(), Rejection.MALFORMED)]
    # The same upload again (a retried sync, or a replayed receipt): counted once.
    again = ledger.sync(b"TAXI0001", "前橋タクシー", [(one.hex(), first)], NOW + MINUTE)
    assert again.accepted == [] and again.duplicates == [(one.hex(), 1)]
    assert ledger.ride_count() == 1 and ledger.usage(one.hex(), NOW).rides == 1


def test_a_receipt_replayed_by_another_terminal_is_refused(ledger: Ledger,
                                                           city: CityKeys) -> None:
    one = rider(1)
    genuine = receipt(city, one, 1, NOW)
    stolen = ledger.sync(b"TAXI0002", "赤城交通", [(one.hex(), genuine)], NOW)
    assert stolen.rejected == [(one.hex(), 1, Rejection.OTHER_TERMINAL)]
    assert ledger.sync(b"TAXI0001", "前橋タクシー", [(one.hex(), genuine)], NOW).accepted
    # A second, different receipt under the same sequence cannot come from a genuine card.
    other = receipt(city, one, 1, NOW + MINUTE, fare=5000)
    clash = ledger.sync(b"TAXI0001", "前橋タクシー", [(one.hex(), other)], NOW)
    assert clash.rejected == [(one.hex(), 1, Rejection.CONFLICT)]


def test_stopped_and_unknown_riders(ledger: Ledger, city: CityKeys) -> None:
    one, two, stranger = rider(1), rider(2), rider(9)
    stop = NOW + 60 * MINUTE
    assert ledger.stop_resident("resident-1", StopReason.MOVED_OUT, stop) == [one.hex()]
    assert ledger.stop_rider(two.hex(), StopReason.CARD_LOST, stop)
    assert not ledger.stop_rider(two.hex(), StopReason.CARD_LOST, stop)
    with pytest.raises(LedgerError):
        ledger.stop_rider(stranger.hex(), StopReason.CARD_LOST, stop)
    outcome = ledger.sync(b"TAXI0001", "前橋タクシー", [
        (one.hex(), receipt(city, one, 1, NOW)),            # before the move: still counts
        (one.hex(), receipt(city, one, 2, stop + MINUTE)),  # after it: refused
        (two.hex(), receipt(city, two, 1, stop)),
        (stranger.hex(), receipt(city, stranger, 1, NOW))], stop + 2 * MINUTE)
    assert outcome.accepted == [(one.hex(), 1)]
    assert [(r, why) for r, _, why in outcome.rejected] == [
        (one.hex(), Rejection.STOPPED), (two.hex(), Rejection.STOPPED),
        (stranger.hex(), Rejection.UNKNOWN_RIDER)]
    assert ledger.deny_list() == sorted([one.hex(), two.hex()])
    assert ledger.usage(one.hex(), NOW).stopped is StopReason.MOVED_OUT


def test_a_new_card_replaces_the_old_one(ledger: Ledger) -> None:
    ledger.register(rider(7), "resident-1", 1, 70, NOW)
    assert ledger.deny_list() == [rider(1).hex()]
    assert ledger.usage(rider(1).hex(), NOW).stopped is StopReason.CARD_REPLACED
    with pytest.raises(LedgerError, match="already registered"):
        ledger.register(rider(7), "resident-1", 1, 70, NOW)


def test_same_card_in_two_taxis_within_minutes_is_flagged(ledger: Ledger,
                                                          city: CityKeys) -> None:
    one, two = rider(1), rider(2)
    ledger.sync(b"TAXI0001", "前橋タクシー", [(one.hex(), receipt(city, one, 1, NOW)),
                                          (two.hex(), receipt(city, two, 1, NOW))], NOW)
    outcome = ledger.sync(b"TAXI0002", "赤城交通", [
        (one.hex(), receipt(city, one, 2, NOW + 4 * MINUTE, terminal=b"TAXI0002")),
        (two.hex(), receipt(city, two, 2, NOW + 40 * MINUTE, terminal=b"TAXI0002"))],
        NOW + 60 * MINUTE)
    assert outcome.flagged == [(one.hex(), 2, Flag.TWO_TAXIS)]
    claim = list(csv.reader(io.StringIO(ledger.claim_csv("前橋タクシー", "2026-05"))))
    flags = {row[2]: row[7] for row in claim[1:-1]}
    assert flags == {one.hex(): "two-taxis", two.hex(): ""}   # the earlier ride too


def test_a_ride_dated_after_its_upload_is_flagged(ledger: Ledger, city: CityKeys) -> None:
    one = rider(1)
    ahead = receipt(city, one, 1, NOW + 3 * 60 * MINUTE)  # tablet clock set hours ahead
    outcome = ledger.sync(b"TAXI0001", "前橋タクシー", [(one.hex(), ahead)], NOW)
    assert outcome.flagged == [(one.hex(), 1, Flag.CLOCK_AHEAD)]


def test_monthly_claim_per_company(ledger: Ledger, city: CityKeys) -> None:
    one, two = rider(1), rider(2)
    april = NOW - 5 * dt.timedelta(days=1)
    ledger.sync(b"TAXI0001", "前橋タクシー", [
        (one.hex(), receipt(city, one, 1, april, fare=1500)),
        (one.hex(), receipt(city, one, 2, NOW, fare=3000)),
        (two.hex(), receipt(city, two, 1, NOW + MINUTE, fare=1600, riders=2))], NOW)
    ledger.sync(b"TAXI0002", "赤城交通", [
        (two.hex(), receipt(city, two, 2, NOW + 60 * MINUTE, terminal=b"TAXI0002"))],
        NOW + 61 * MINUTE)
    rows = list(csv.reader(io.StringIO(ledger.claim_csv("前橋タクシー", "2026-05"))))
    assert rows[0][:7] == ["ride_time_jst", "terminal", "rider", "sequence", "riders", "fare",
                           "subsidy"]
    assert [(r[0], r[2], r[5], r[6]) for r in rows[1:-1]] == [
        ("2026-05-01 10:00", one.hex(), "3000", "1000"),
        ("2026-05-01 10:01", two.hex(), "1600", "500")]
    assert rows[-1] == ["TOTAL", "前橋タクシー", "2026-05", "2", "", "4600", "1500", "0"]
    april_rows = list(csv.reader(io.StringIO(ledger.claim_csv("前橋タクシー", "2026-04"))))
    assert april_rows[-1][3:7] == ["1", "", "1500", "750"]
    with pytest.raises(LedgerError):
        ledger.claim_csv("前橋タクシー", "May 2026")


def test_the_fiscal_year_resets_in_april_jst(ledger: Ledger, city: CityKeys) -> None:
    one = rider(1)
    # 2027-03-31 23:30 JST is still fiscal 2026; 00:30 the next day is fiscal 2027.
    last_day = dt.datetime(2027, 3, 31, 14, 30, tzinfo=dt.UTC)
    ledger.sync(b"TAXI0001", "前橋タクシー", [(one.hex(), receipt(city, one, 1, NOW)),
                                          (one.hex(), receipt(city, one, 2, last_day))],
                last_day)
    assert ledger.usage(one.hex(), last_day).rides == 2
    new_year = last_day + 60 * MINUTE
    assert (ledger.usage(one.hex(), new_year).fiscal_year,
            ledger.usage(one.hex(), new_year).rides,
            ledger.usage(one.hex(), new_year).remaining) == (2027, 0, 70)
    ledger.sync(b"TAXI0001", "前橋タクシー", [(one.hex(), receipt(city, one, 3, new_year))],
                new_year)
    assert ledger.usage(one.hex(), new_year).rides == 1


TERMINALS, RIDERS, RIDES = 4, 4, 5


def _terminal_rides(keys: CityKeys, t: int) -> list[tuple[str, bytes]]:
    """Terminal ``t``'s rides: the same riders in every taxi, hours apart."""
    terminal = f"TAXI{t:04d}".encode()
    return [(rider(r).hex(), receipt(keys, rider(r), t * 100 + k,
                                     NOW + dt.timedelta(hours=t, minutes=k), terminal=terminal))
            for r in range(1, RIDERS + 1) for k in range(RIDES)]


def _syncer(url: str, keys: CityKeys, t: int, barrier, results) -> None:  # noqa: ANN001
    ledger = Ledger(url, keys)
    rides = _terminal_rides(keys, t)
    barrier.wait()
    first = ledger.sync(f"TAXI{t:04d}".encode(), "前橋タクシー", rides, NOW + 9 * 60 * MINUTE)
    # The sync is retried (its answer was lost): everything is a duplicate now.
    second = ledger.sync(f"TAXI{t:04d}".encode(), "前橋タクシー", rides, NOW + 9 * 60 * MINUTE)
    results.put((t, len(first.accepted), len(first.duplicates), len(second.accepted),
                 len(second.duplicates), len(first.rejected) + len(second.rejected)))
    ledger.close()


def test_many_terminals_syncing_at_once_neither_lose_nor_double(
        db_url: str, city: CityKeys) -> None:
    """Each terminal uploads from two processes at once (a sync started twice), all
    terminals together: every ride is accepted exactly once in all."""
    setup = Ledger(db_url, city)
    for n in range(1, RIDERS + 1):
        setup.register(rider(n), f"resident-{n}", 1, 70, NOW - dt.timedelta(days=30))
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(2 * TERMINALS), context.Queue()
    workers = [context.Process(target=_syncer, args=(db_url, city, t, barrier, results))
               for t in range(1, TERMINALS + 1) for _ in range(2)]
    for worker in workers:
        worker.start()
    answers = [results.get(timeout=180) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    per_terminal = RIDERS * RIDES
    for t in range(1, TERMINALS + 1):
        mine = [a for a in answers if a[0] == t]
        assert sum(a[1] for a in mine) == per_terminal           # accepted once in all
        assert all(a[1] + a[2] == per_terminal for a in mine)    # the rest are duplicates
        assert all(a[3:] == (0, per_terminal, 0) for a in mine)  # the retry: all duplicates
    assert setup.ride_count() == TERMINALS * per_terminal
    assert setup.usage(rider(1).hex(), NOW).rides == TERMINALS * RIDES
    setup.close()


def test_resident_feed_stops_moves_and_deaths(ledger: Ledger) -> None:
    feed = ('[{"event": "move-out", "resident": "resident-1", "at": "2026-05-02T09:00:00+09:00"},'
            ' {"event": "death", "resident": "resident-2", "at": "2026-05-03T09:00:00+09:00"},'
            ' {"event": "death", "resident": "nobody", "at": "2026-05-03T09:00:00+09:00"}]')
    assert ledger.apply_resident_feed(feed) == [("resident-1", [rider(1).hex()]),
                                                ("resident-2", [rider(2).hex()]),
                                                ("nobody", [])]
    assert ledger.usage(rider(2).hex(), NOW).stopped is StopReason.DIED
    assert ledger.deny_list() == [rider(1).hex(), rider(2).hex()]
    for bad in ('[{"event": "marriage", "resident": "x", "at": "2026-05-02T09:00:00+09:00"}]',
                '[{"event": "death", "resident": "x", "at": "2026-05-02T09:00:00"}]', "{"):
        with pytest.raises(LedgerError):
            ledger.apply_resident_feed(bad)


def _ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Auth CA")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=365))
            .sign(key, hashes.SHA256()))
    return key, cert


def test_jpki_revocation_stops_lost_and_dead_cards_not_moves(db_url: str,
                                                             city: CityKeys) -> None:
    key, ca = _ca()
    key_id = x509.SubjectKeyIdentifier.from_public_key(key.public_key()).digest.hex()
    ledger = Ledger(db_url, city)
    for n, serial in ((1, 0x10), (2, 0x11), (3, 0x12), (4, 0x13)):
        ledger.register(rider(n), f"resident-{n}", 1, 70, NOW,
                        link_key=f"{key_id}:{serial:x}")
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
               .last_update(NOW).next_update(NOW + dt.timedelta(days=1)))
    for serial, reason in ((0x10, x509.ReasonFlags.certificate_hold),
                           (0x11, x509.ReasonFlags.cessation_of_operation),
                           (0x12, x509.ReasonFlags.key_compromise)):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(NOW)
            .add_extension(x509.CRLReason(reason), critical=False).build())
    crl = builder.sign(key, hashes.SHA256())
    assert ledger.apply_revocations(crl, ca) == [
        (rider(1).hex(), StopReason.CARD_LOST), (rider(2).hex(), StopReason.DIED),
        (rider(3).hex(), StopReason.CARD_REVOKED)]
    assert rider(4).hex() not in ledger.deny_list()   # a move revokes nothing: the feed must
    _, stranger = _ca()
    with pytest.raises(LedgerError, match="not signed"):
        ledger.apply_revocations(crl, stranger)
    ledger.close()
