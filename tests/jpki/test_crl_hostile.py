"""Hostile CRLs (issue 9, hardening items 2 and 3): duplicate extensions are refused, a bad CRL
is skipped with a reason while validation goes on, and the C scanner and the pure-Python
fallback give the same answers on the same bytes, mutated ones included."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mynacard.iso7816.tlv import ber_encode, ber_iter
from mynacard.jpki import crlindex, lifecycle
from mynacard.jpki.crlindex import CRLFormatError, CRLIndex, serial_content
from mynacard.jpki.profile import SIGN_CA
from mynacard.jpki.publish import issue_crl
from mynacard.jpki.validate import Policy, RevocationMethod, Validator, Verdict

T0 = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
CRL_ONLY = Policy(methods=(RevocationMethod.CRL,))
NAME = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "hostile CRL test CA")])
OID_REASON, OID_INVALIDITY = b"\x55\x1d\x15", b"\x55\x1d\x18"
AFFILIATION_CHANGED, REMOVE_FROM_CRL = 3, 8
needs_scanner = pytest.mark.skipif(
    crlindex._crlscan is None,
    reason="the C scanner was not built (no compiler at install time); CI always builds it")
PATHS = ["scanner", "fallback"]


@contextmanager
def crl_path(name: str) -> Iterator[None]:
    """Run the body with the C scanner, or as an install without a compiler would."""
    if name == "scanner" and crlindex._crlscan is None:
        pytest.skip("the C scanner was not built")
    with pytest.MonkeyPatch.context() as patch:
        if name == "fallback":
            patch.setattr(crlindex, "_crlscan", None)
        yield


def load_fallback(der: bytes) -> CRLIndex:
    with crl_path("fallback"):
        return CRLIndex.load(der)


# -- DER crafting: what no CRL builder will write -------------------------------------------

def tlv(tag: int, *parts: bytes) -> bytes:
    return ber_encode(tag, b"".join(parts))


def extension(oid: bytes, value: bytes, critical: bool = False) -> bytes:
    return tlv(0x30, tlv(0x06, oid), tlv(0x01, b"\xff") if critical else b"", tlv(0x04, value))


def reason(code: int) -> bytes:
    return extension(OID_REASON, tlv(0x0A, bytes((code,))))


def entry(serial: int, *extensions: bytes, content: bytes | None = None) -> bytes:
    exts = tlv(0x30, *extensions) if extensions else b""
    return tlv(0x30, tlv(0x02, content or serial_content(serial)), tlv(0x17, b"260401000000Z"),
               exts)


def with_entries_and_extensions(tbs: bytes, entries: list[bytes] | None,
                                list_extensions: Callable[[list[bytes]], list[bytes]] | None
                                ) -> bytes:
    """``tbs`` (a tbsCertList) with its revoked list replaced and its list extensions
    rewritten; fields are kept as they are."""
    fields = [(tag, value) for tag, value in ber_iter(next(iter(ber_iter(tbs)))[1])]
    out = []
    for tag, value in fields:
        if tag == 0x30 and out and out[-1][0] in (0x17, 0x18) and entries is not None:
            continue  # an existing revoked list (it follows the dates): replaced below
        if tag == 0xA0:
            if entries is not None:
                out.append((0x30, b"".join(entries)))
                entries = None
            if list_extensions is not None:
                exts = [ber_encode(t, v) for t, v in ber_iter(next(iter(ber_iter(value)))[1])]
                value = tlv(0x30, *list_extensions(exts))
        out.append((tag, value))
    return tlv(0x30, *(ber_encode(t, v) for t, v in out))


def signed(tbs: bytes, algorithm_der: bytes, sign: Callable[[bytes], bytes]) -> bytes:
    return tlv(0x30, tbs, algorithm_der, tlv(0x03, b"\x00" + sign(tbs)))


def algorithm_of(der: bytes) -> bytes:
    _tbs, algorithm, _sig = (ber_encode(t, v) for t, v in ber_iter(next(iter(ber_iter(der)))[1]))
    return algorithm


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def ec_crl(key: ec.EllipticCurvePrivateKey, entries: list[bytes] | None = None,
           list_extensions: Callable[[list[bytes]], list[bytes]] | None = None) -> bytes:
    """A CRL of NAME signed by ``key``, with hand-made entries and list extensions."""
    base = (x509.CertificateRevocationListBuilder().issuer_name(NAME).last_update(T0)
            .next_update(T0 + dt.timedelta(days=1))
            .add_extension(x509.CRLNumber(7), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
    tbs = with_entries_and_extensions(x509.load_der_x509_crl(base).tbs_certlist_bytes,
                                      entries, list_extensions)
    return signed(tbs, algorithm_of(base), lambda data: key.sign(data, ec.ECDSA(hashes.SHA256())))


def duplicate_first(exts: list[bytes]) -> list[bytes]:
    return [exts[0], *exts]


# -- item 2: a duplicated extension in an entry or in the list ------------------------------

@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("entries", "list_extensions", "what"), [
    ([entry(5, reason(AFFILIATION_CHANGED), reason(REMOVE_FROM_CRL))], None,
     "duplicate extension in a revoked entry"),
    ([entry(5, reason(REMOVE_FROM_CRL), reason(AFFILIATION_CHANGED))], None,
     "duplicate extension in a revoked entry"),
    ([entry(5, extension(b"\x2a\x03", b"\x05\x00"), extension(b"\x2a\x03", b"\x05\x00"))],
     None, "duplicate extension in a revoked entry"),
    ([entry(5, reason(1))], duplicate_first, "DuplicateExtension"),
    ([entry(5)], lambda exts: [*exts, exts[-1]], "DuplicateExtension"),
])
def test_duplicate_extensions_are_refused_on_both_paths(key, path, entries, list_extensions,
                                                        what):
    der = ec_crl(key, entries, list_extensions)
    with crl_path(path), pytest.raises(CRLFormatError, match=what):
        CRLIndex.load(der)


@pytest.mark.parametrize("path", PATHS)
def test_a_single_reason_code_still_loads(key, path):
    der = ec_crl(key, [entry(5, reason(AFFILIATION_CHANGED))])
    with crl_path(path):
        index = CRLIndex.load(der)
        assert index.lookup(5).reason is x509.ReasonFlags.affiliation_changed
        assert index.verify_signature(key.public_key())


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("entries", "accepted"), [
    ([entry(0, content=b"\x01" + bytes(31))], True),  # 32 octets: tolerated
    ([entry(0, content=b"\x01" + bytes(32))], False),  # 33 octets: refused by both paths
    ([entry(0, content=b"\x00\x80" + bytes(31))], False),
    ([entry(5, extension(OID_REASON, tlv(0x0A, b"\x07")))], False),  # reason 7 is unused
    ([entry(5, extension(OID_REASON, tlv(0x0A, b"\x00\x01")))], False),
    ([entry(5, extension(OID_INVALIDITY, tlv(0x18, b"20260230000000Z")))], False),
    ([entry(5, extension(OID_INVALIDITY, tlv(0x18, b"20240229000000Z")))], True),
    ([entry(5, *(extension(b"\x2a\x03" + bytes((n,)), b"\x05\x00") for n in range(16)))],
     True),
    ([entry(5, *(extension(b"\x2a\x03" + bytes((n,)), b"\x05\x00") for n in range(17)))],
     False),
])
def test_scanner_and_fallback_agree_on_edge_entries(key, path, entries, accepted):
    der = ec_crl(key, entries)
    with crl_path(path):
        if accepted:
            assert CRLIndex.load(der).count == 1
        else:
            with pytest.raises(CRLFormatError):
                CRLIndex.load(der)


# -- item 3: one bad CRL is skipped with its reason; the others still count --------------------

def _issue(pki, resident, card_keys):
    return lifecycle.issue_card(pki, resident, card_keys[0], card_keys[1], T0 + HOUR,
                                dt.date(2035, 7, 14), card_id="card-1")


def _resigned(pki, good: x509.CertificateRevocationList, entries=None,
              list_extensions=None) -> bytes:
    """``good`` rewritten and signed again by its CA: only the crafted part is wrong."""
    ca_key = pki.ca(SIGN_CA, 1).key
    tbs = with_entries_and_extensions(good.tbs_certlist_bytes, entries, list_extensions)
    return signed(tbs, algorithm_of(good.public_bytes(serialization.Encoding.DER)),
                  lambda data: ca_key.sign(data, padding.PKCS1v15(), hashes.SHA256()))


@pytest.mark.parametrize("path", PATHS)
def test_a_crl_with_a_duplicated_list_extension_is_skipped_and_validation_goes_on(
        pki, resident, card_keys, path):
    certs = _issue(pki, resident, card_keys)
    good = issue_crl(pki, SIGN_CA, 1, T0 + 2 * HOUR)
    bad = _resigned(pki, good, list_extensions=duplicate_first)
    with crl_path(path):
        both = Validator(pki.trust_anchors(), crls=[bad, good], policy=CRL_ONLY)
        assert both.validate(certs.sign, T0 + 3 * HOUR).verdict is Verdict.VALID
        alone = Validator(pki.trust_anchors(), crls=[bad], policy=CRL_ONLY)
        result = alone.validate(certs.sign, T0 + 3 * HOUR)
    assert result.verdict is Verdict.NO_REVOCATION_INFO  # fail closed: no usable CRL left
    assert "CRL #1" in result.detail and "DuplicateExtension" in result.detail


@pytest.mark.parametrize("path", PATHS)
def test_a_second_reason_code_cannot_unrevoke(pki, resident, card_keys, path):
    """affiliationChanged then removeFromCRL: openssl reads it as revoked, cryptography refuses
    the CRL; here the CRL is refused, so the certificate is never reported good."""
    certs = _issue(pki, resident, card_keys)
    good = issue_crl(pki, SIGN_CA, 1, T0 + 2 * HOUR)
    serial = certs.sign.serial_number
    bad = _resigned(pki, good, entries=[
        entry(serial, reason(AFFILIATION_CHANGED), reason(REMOVE_FROM_CRL))])
    with crl_path(path):
        result = Validator(pki.trust_anchors(), crls=[bad], policy=CRL_ONLY).validate(
            certs.sign, T0 + 3 * HOUR)
    assert result.verdict is Verdict.NO_REVOCATION_INFO
    assert "duplicate extension in a revoked entry" in result.detail


# -- both paths, one verdict: a mutated corpus --------------------------------------------------

def _answers(load: Callable[[bytes], CRLIndex], der: bytes, public_key) -> object:
    """Everything a caller can learn from loading ``der``: refused, or every answer."""
    try:
        index = load(der)
    except CRLFormatError:
        return "refused"
    entries = list(index.entries())
    probes = {e.serial for e in entries} | {1, 5, 0x80, 2**159 - 1, -1, 0}
    return (index.count, index.tbs_bytes, entries, index.is_indirect,
            index.has_unknown_critical_entry_extension, list(index.header.extensions),
            index.header.issuer, index.header.last_update_utc, index.header.next_update_utc,
            {s: (index.lookup(s), s in index) for s in probes},
            index.verify_signature(public_key))


def _corpus(key) -> list[bytes]:
    """Seed CRLs covering what the scanner decodes: reasons, invalidity dates, long serials,
    GeneralizedTime dates, critical and indirect entry extensions, list extensions."""
    builder = (x509.CertificateRevocationListBuilder().issuer_name(NAME).last_update(T0)
               .next_update(T0 + dt.timedelta(days=1))
               .add_extension(x509.CRLNumber(3), critical=False))
    for n, (serial, when) in enumerate([(1, T0), (0x80, T0), (2**159 - 1, T0),
                                        (77, dt.datetime(2051, 1, 1, tzinfo=dt.UTC))]):
        revoked = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when)
        if n % 2 == 0:
            revoked = revoked.add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise),
                                            critical=False)
        if n == 2:
            revoked = revoked.add_extension(x509.InvalidityDate(dt.datetime(2025, 1, 1)),
                                            critical=False)
        builder = builder.add_revoked_certificate(revoked.build())
    plain = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    issuer = extension(b"\x55\x1d\x1d", tlv(0x30, tlv(0xA4, NAME.public_bytes())), True)
    return [
        plain,
        ec_crl(key, [entry(5, reason(1)), entry(6, issuer), entry(7, reason(6))]),
        ec_crl(key, [entry(9, extension(b"\x2a\x03", b"\x05\x00", True)), entry(9)]),
        ec_crl(key, [entry(5, reason(AFFILIATION_CHANGED), reason(REMOVE_FROM_CRL))]),
        ec_crl(key, [entry(0, content=b"\x01" + bytes(31))]),
        ec_crl(key, []),
    ]


def _mutate(der: bytes, rng: random.Random) -> bytes:
    mutated = bytearray(der)
    for _ in range(rng.randint(1, 3)):
        position = rng.randrange(len(mutated))
        action = rng.choice(["flip", "set", "delete", "insert", "length"])
        if action == "flip":
            mutated[position] ^= 1 << rng.randrange(8)
        elif action == "set":
            mutated[position] = rng.randrange(256)
        elif action == "delete":
            del mutated[position]
        elif action == "insert":
            mutated.insert(position, rng.randrange(256))
        else:  # nudge a byte by one: keeps lengths and tags plausible more often than a flip
            mutated[position] = (mutated[position] + rng.choice((-1, 1))) % 256
    return bytes(mutated)


@needs_scanner
def test_scanner_and_fallback_agree_on_a_fixed_mutated_corpus(key):
    """A seeded corpus (the same every run, so no verdict depends on luck): for every mutant
    both paths refuse, or both load and answer everything alike."""
    rng = random.Random(20260409)
    refused = loaded = 0
    for seed in _corpus(key):
        for der in [seed] + [_mutate(seed, rng) for _ in range(400)]:
            fast = _answers(CRLIndex.load, der, key.public_key())
            assert _answers(load_fallback, der, key.public_key()) == fast, der.hex()
            refused, loaded = refused + (fast == "refused"), loaded + (fast != "refused")
    assert refused > 500 and loaded > 200  # the corpus exercises both outcomes


@needs_scanner
@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_scanner_and_fallback_agree_on_hypothesis_mutations(key, data):
    seed = data.draw(st.sampled_from(_corpus(key)))
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    der = _mutate(seed, rng)
    assert _answers(load_fallback, der, key.public_key()) == \
        _answers(CRLIndex.load, der, key.public_key())
