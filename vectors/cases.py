"""The revocation cases: a small fixed PKI and every case built on it (``build`` writes them,
``run`` checks a validator against them).

Every case is a directory with the end-entity certificate, trust anchors, other certificates,
CRLs and at most one OCSP response, plus an entry in ``manifest.json`` giving the validation
time, the revocation method to use, an expected OCSP nonce and the expected result. The build is
deterministic: fixed keys (``keys.json``, public test keys), fixed serials and times, and
RSA PKCS#1 v1.5 signatures, which are deterministic.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

from asn1crypto import core as asn1_core
from asn1crypto import crl as asn1_crl
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import ocsp

from ..facts.person import Resident, Sex
from ..iso7816.tlv import ber_encode
from ..jpki.ca import CertificateAuthority
from ..jpki.ocsp import pin_produced_at
from ..jpki.profile import (
    AUTH_CA,
    SIGN_CA,
    EndEntityRequest,
    build_auth_certificate,
    build_ca_certificate,
    build_link_certificate,
    build_responder_certificate,
    build_sign_certificate,
)
from ..jpki.publish import RevokedEntry, sign_crl
from ..jpki.validate import Verdict

MANIFEST = "manifest.json"
T = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
"""Default validation time of the cases."""
BASE = "http://127.0.0.1:8780"
NONCE = bytes.fromhex("6d796e61636172642d6e6f6e63652d31")
UNKNOWN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.99999.1")
R = x509.ReasonFlags


@cache
def _keys() -> dict[str, rsa.RSAPrivateKey]:
    data = json.loads((Path(__file__).parent / "keys.json").read_text())
    return {name: serialization.load_pem_private_key(pem.encode(), None)
            for name, pem in data["keys"].items()}


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _crl_pem(der: bytes) -> bytes:
    return x509.load_der_x509_crl(der).public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class Case:
    id: str
    description: str
    cert: x509.Certificate
    verdict: Verdict
    reason: x509.ReasonFlags | None = None
    anchors: tuple[x509.Certificate, ...] = ()
    intermediates: tuple[x509.Certificate, ...] = ()
    crls: tuple[bytes, ...] = ()
    ocsp: bytes | None = None
    time: dt.datetime = T
    method: str = "crl"
    nonce: bytes | None = None


class _World:
    """The vectors' PKI: two generations of the signing CA, the auth CA, a rogue CA."""

    def __init__(self) -> None:
        k = _keys()
        start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
        # Long-lived CAs so that the UTCTime/GeneralizedTime boundary cases (2049/2050) sit
        # inside every CA certificate's validity.
        life = dt.datetime(2060, 1, 1, tzinfo=dt.UTC) - start
        self.sign_g1 = CertificateAuthority(SIGN_CA, k["sign-ca-g1"], build_ca_certificate(
            SIGN_CA, k["sign-ca-g1"], 0x0101, start, start + life), 1)
        g2_start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        self.sign_g2 = CertificateAuthority(SIGN_CA, k["sign-ca-g2"], build_ca_certificate(
            SIGN_CA, k["sign-ca-g2"], 0x0102, g2_start, g2_start + life), 2)
        self.auth_g1 = CertificateAuthority(AUTH_CA, k["auth-ca-g1"], build_ca_certificate(
            AUTH_CA, k["auth-ca-g1"], 0x0201, start, start + life), 1)
        rogue_name = x509.Name([x509.NameAttribute(x509.NameOID.COUNTRY_NAME, "JP"),
                                x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "Rogue CA")])
        rogue_key = k["rogue-ca"]
        self.rogue = CertificateAuthority(SIGN_CA, rogue_key, (
            x509.CertificateBuilder().subject_name(rogue_name).issuer_name(rogue_name)
            .public_key(rogue_key.public_key()).serial_number(0x0301)
            .not_valid_before(start).not_valid_after(start + life)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(rogue_key, hashes.SHA256())), 1)
        self.new_with_old = build_link_certificate(
            SIGN_CA, k["sign-ca-g2"].public_key(), k["sign-ca-g1"], 0x0111, g2_start,
            self.sign_g1.certificate.not_valid_after_utc, f"{BASE}/crl/sign-g1-arl.crl")
        self.old_with_new = build_link_certificate(
            SIGN_CA, k["sign-ca-g1"].public_key(), k["sign-ca-g2"], 0x0112, g2_start,
            self.sign_g1.certificate.not_valid_after_utc, f"{BASE}/crl/sign-g2-arl.crl")
        self.sign_responder = build_responder_certificate(
            SIGN_CA, k["sign-responder"].public_key(), self.sign_g1.certificate,
            k["sign-ca-g1"], 0x0121, start, start + life)
        self.rogue_responder = build_responder_certificate(
            SIGN_CA, k["sign-responder"].public_key(), self.rogue.certificate, rogue_key,
            0x0321, start, start + life)
        self.resident = Resident("山田", "花子", "東京都清瀬市元町一丁目1番1号",
                                 dt.date(1985, 4, 2), Sex.FEMALE, "Tokyo-to", "Kiyose-shi",
                                 "13221")
        self.moved = replace(self.resident, address="東京都清瀬市中里二丁目2番2号")
        self._crl_numbers: dict[int, int] = {}

    def next_crl_number(self, ca: CertificateAuthority) -> int:
        """CRL numbers count up per issuer key across the whole corpus, so no two different
        CRLs of one key share a number and a validator's CRL cache cannot mix cases."""
        key = ca.certificate.serial_number
        self._crl_numbers[key] = self._crl_numbers.get(key, 0) + 1
        return self._crl_numbers[key]

    def sign_cert(self, serial: int, ca: CertificateAuthority | None = None,
                  resident: Resident | None = None,
                  not_before: dt.datetime = dt.datetime(2026, 2, 1, tzinfo=dt.UTC),
                  not_after: dt.datetime = dt.datetime(2030, 4, 2, 14, 59, 59, tzinfo=dt.UTC),
                  extra: Sequence[tuple[x509.ExtensionType, bool]] = ()) -> x509.Certificate:
        ca = ca or self.sign_g1
        request = EndEntityRequest(serial, not_before, not_after,
                                   f"{BASE}/crl/sign-g{ca.generation}.crl", f"{BASE}/ocsp")
        common_name = f"20260201090000{serial % 100000:05d}13221001"
        cert = build_sign_certificate(resident or self.resident, common_name,
                                      _keys()["end-entity"].public_key(), ca.certificate, ca.key,
                                      request)
        if not extra:
            return cert
        builder = (x509.CertificateBuilder().subject_name(cert.subject)
                   .issuer_name(cert.issuer).public_key(cert.public_key())
                   .serial_number(cert.serial_number)
                   .not_valid_before(cert.not_valid_before_utc)
                   .not_valid_after(cert.not_valid_after_utc))
        for ext in cert.extensions:
            builder = builder.add_extension(ext.value, ext.critical)
        for value, critical in extra:
            builder = builder.add_extension(value, critical)
        return builder.sign(ca.key, hashes.SHA256())

    def auth_cert(self, serial: int) -> x509.Certificate:
        request = EndEntityRequest(serial, dt.datetime(2026, 2, 1, tzinfo=dt.UTC),
                                   dt.datetime(2030, 4, 2, 14, 59, 59, tzinfo=dt.UTC),
                                   f"{BASE}/crl/auth-g1.crl", f"{BASE}/ocsp")
        return build_auth_certificate("0A1B2C3DABCDEF13221001A",
                                      _keys()["end-entity"].public_key(),
                                      self.auth_g1.certificate, self.auth_g1.key, request)

    def crl(self, ca: CertificateAuthority, entries: Sequence[RevokedEntry] = (),
            this_update: dt.datetime = T - dt.timedelta(hours=1),
            next_update: dt.datetime = T + dt.timedelta(hours=23), *,
            delta_base: int | None = None, arl: bool = False, scope_generation: int | None = None,
            freshest: bool = False,
            extra: Sequence[tuple[x509.ExtensionType, bool]] = ()) -> bytes:
        """A CRL signed by ``ca`` with the issuer key's next CRL number; ``scope_generation``
        claims another generation's scope. Only the complete CRLs of the delta cases point to a
        delta (``freshest``): elsewhere a validator that sets use-deltas would have to look for a
        delta the case does not ship, a second fault (RFC 5280 §6.3.3 (a)(2))."""
        kind = ca.kind.key
        generation = scope_generation or ca.generation
        url = f"{BASE}/crl/{kind}-g{generation}{'-arl' if arl else ''}.crl"
        crl = sign_crl(ca, entries, self.next_crl_number(ca), this_update, next_update,
                       idp_url=url, only_ca_certs=arl, delta_base=delta_base,
                       freshest_url=f"{BASE}/crl/{kind}-g{generation}-delta.crl"
                       if freshest else None,
                       extra_extensions=extra)
        return crl.public_bytes(serialization.Encoding.DER)

    def ocsp(self, cert: x509.Certificate, issuer: CertificateAuthority,
             status: ocsp.OCSPCertStatus, *, responder: x509.Certificate | None = None,
             responder_key: rsa.RSAPrivateKey | None = None, nonce: bytes | None = NONCE,
             this_update: dt.datetime = T - dt.timedelta(minutes=10),
             next_update: dt.datetime | None = T + dt.timedelta(minutes=50),
             revoked: tuple[dt.datetime, x509.ReasonFlags] | None = None) -> bytes:
        responder = responder or self.sign_responder
        key = responder_key or _keys()["sign-responder"]
        builder = (ocsp.OCSPResponseBuilder()
                   .add_response(cert, issuer.certificate, hashes.SHA256(), status, this_update,
                                 next_update, revoked[0] if revoked else None,
                                 revoked[1] if revoked else None)
                   .responder_id(ocsp.OCSPResponderEncoding.HASH, responder))
        if responder is not issuer.certificate:
            builder = builder.certificates([responder])
        if nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        der = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
        return pin_produced_at(der, key, this_update)


CLOCK_SKEW = dt.timedelta(0)
"""The clock-skew tolerance every case states: times compare to the second, no slack."""

POLICY_DEPENDENT: dict[str, tuple[str, str]] = {
    # case id: (the relying-party policy that gives the expected verdict, and what a validator
    # with the other policy answers). Every other case follows from RFC 5280 / RFC 6960 given
    # the stated inputs.
    "crl-missing-next-update": (
        "a CRL without nextUpdate is not fresh (its freshness cannot be established; RFC 5280 "
        "§5.1.2.5 requires conforming CAs to include nextUpdate, §6.3 leaves the rest to the "
        "relying party)",
        "valid, for a validator that accepts a CRL without nextUpdate as current"),
    "crl-next-update-boundary-valid": (
        "a CRL is fresh up to and including its nextUpdate second, with no clock-skew "
        "tolerance",
        "stale-revocation-info, for a validator that treats nextUpdate as exclusive"),
    "crl-next-update-boundary-stale": (
        "no clock-skew tolerance: one second after nextUpdate is stale",
        "valid, for a validator with a clock-skew tolerance of a second or more"),
    "crl-from-the-future": (
        "a CRL whose thisUpdate is after the validation time (beyond the clock-skew tolerance) "
        "is not used",
        "valid, for a validator that does not compare thisUpdate with the validation time"),
    "hold-without-delta": (
        "use-deltas is not set (RFC 5280 §6.1.1 / §6.3.3 (a)(2)): the complete CRL alone "
        "decides",
        "no-usable-revocation-info, for a validator that sets use-deltas: the complete CRL "
        "names a delta the case does not ship"),
    "ocsp-missing-nonce": (
        "the response must echo the request's nonce (RFC 9654 §2.1 lets the client require "
        "it; RFC 6960 responders may omit it)",
        "valid, for a client that accepts responses without a nonce"),
}


def revocation_scope(case: Case) -> str:
    """Which certificates need revocation information: the end entity alone when it is the
    only certificate below the trust anchor, every certificate below the anchor otherwise."""
    return "full-path" if case.intermediates else "end-entity"


def uses_deltas(case: Case) -> bool:
    """The use-deltas input: set exactly when the case ships a delta CRL."""
    return any(_is_delta(der) for der in case.crls)


def _is_delta(der: bytes) -> bool:
    try:
        crl = x509.load_der_x509_crl(der)
        crl.extensions.get_extension_for_class(x509.DeltaCRLIndicator)
    except (ValueError, x509.ExtensionNotFound):
        return False
    return True

def _resign(der: bytes, key: rsa.RSAPrivateKey, mutate) -> bytes:
    """Re-sign a CRL after ``mutate`` changed its asn1crypto tbsCertList (fields that
    ``cryptography``'s builder will not produce, such as a missing nextUpdate)."""
    shell = asn1_crl.CertificateList.load(der)
    tbs = mutate(shell["tbs_cert_list"])
    tbs_der = tbs.dump(force=True)
    signature = key.sign(tbs_der, padding.PKCS1v15(), hashes.SHA256())
    return ber_encode(0x30, tbs_der + shell["signature_algorithm"].dump()
                   + ber_encode(0x03, b"\x00" + signature))


def _without_next_update(tbs: asn1_crl.TbsCertList) -> asn1_crl.TbsCertList:
    fields = {name: tbs[name] for name in ("version", "signature", "issuer", "this_update",
                                            "revoked_certificates", "crl_extensions")
              if not isinstance(tbs[name], asn1_core.Void)}
    return asn1_crl.TbsCertList(fields)


def _crl_number(der: bytes) -> int:
    return x509.load_der_x509_crl(der).extensions.get_extension_for_class(
        x509.CRLNumber).value.crl_number


def _entry_crl(w: _World, serial: int, critical_unknown: bool) -> bytes:
    """A CRL whose one entry carries an extension the validator cannot know."""
    ca = w.sign_g1
    revoked = (x509.RevokedCertificateBuilder().serial_number(serial)
               .revocation_date(T - dt.timedelta(days=2))
               .add_extension(x509.UnrecognizedExtension(UNKNOWN_OID, b"\x05\x00"),
                              critical=critical_unknown).build())
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca.certificate.subject)
               .last_update(T - dt.timedelta(hours=1)).next_update(T + dt.timedelta(hours=23))
               .add_extension(x509.CRLNumber(w.next_crl_number(ca)), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   ca.key.public_key()), critical=False)
               .add_revoked_certificate(revoked))
    return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def cases() -> list[Case]:
    w = _World()
    g1 = (w.sign_g1.certificate,)
    both = (w.sign_g1.certificate, w.sign_g2.certificate)
    day = dt.timedelta(days=1)
    empty_crl = w.crl(w.sign_g1)
    good = w.sign_cert(0x1000)

    def rev(serial: int, reason: x509.ReasonFlags | None, days_ago: float = 3,
            invalidity: dt.datetime | None = None) -> RevokedEntry:
        return RevokedEntry(serial, T - dt.timedelta(days=days_ago), reason, invalidity)

    old_sign, new_sign, auth = w.sign_cert(0x2001), w.sign_cert(0x2002, resident=w.moved), \
        w.auth_cert(0x2003)
    moved_crl = w.crl(w.sign_g1, [rev(0x2001, R.affiliation_changed)])
    auth_crl = w.crl(w.auth_g1)
    lost_sign, lost_auth = w.sign_cert(0x3001), w.auth_cert(0x3002)
    hold_sign_crl = w.crl(w.sign_g1, [rev(0x3001, R.certificate_hold)])
    hold_auth_crl = w.crl(w.auth_g1, [rev(0x3002, R.certificate_hold)])
    g2_cert = w.sign_cert(0x4001, ca=w.sign_g2)
    g1_cert = w.sign_cert(0x4002)
    g2_crl = w.crl(w.sign_g2)
    high_bit = 0x80_11_22_33_44_55_66_77   # DER needs a leading zero octet
    long_serial = (1 << 159) - 0x1234       # 20 octets, the RFC 5280 maximum
    boundary = w.sign_cert(0x5001, not_after=dt.datetime(2049, 12, 31, 23, 59, 59,
                                                         tzinfo=dt.UTC))
    late = w.sign_cert(0x5002, not_after=dt.datetime(2051, 1, 1, tzinfo=dt.UTC))
    ocsp_cert = w.sign_cert(0x6001)
    G, RV, UN = ocsp.OCSPCertStatus.GOOD, ocsp.OCSPCertStatus.REVOKED, \
        ocsp.OCSPCertStatus.UNKNOWN
    # The superseded complete CRL is numbered before the base the delta names.
    superseded_base = w.crl(w.sign_g1, this_update=T - 3 * day, next_update=T - day,
                            freshest=True)
    base_crl = w.crl(w.sign_g1, [rev(0x7002, R.certificate_hold, 5),
                                 rev(0x7003, R.certificate_hold, 5)], freshest=True)
    delta = w.crl(w.sign_g1, [rev(0x7001, R.key_compromise, 1, T - 4 * day),
                              RevokedEntry(0x7002, T - day, R.remove_from_crl),
                              rev(0x7003, R.key_compromise, 1)],
                  delta_base=_crl_number(base_crl), next_update=T + dt.timedelta(hours=5))
    rogue_cert = x509.CertificateBuilder().subject_name(good.subject).issuer_name(
        w.rogue.certificate.subject).public_key(good.public_key()).serial_number(0x8001) \
        .not_valid_before(good.not_valid_before_utc).not_valid_after(good.not_valid_after_utc) \
        .sign(w.rogue.key, hashes.SHA256())
    bad_sig = bytearray(w.crl(w.sign_g1))
    bad_sig[-1] ^= 0x01
    big_entries = [rev(0x9000_0000 + i * 7, R.superseded, 10 + i % 300) for i in range(3000)]
    busy_cert = w.sign_cert(0x9000_0000 + 1500 * 7)
    busy_crl = w.crl(w.sign_g1, big_entries)
    leading = w.sign_cert(high_bit)
    twenty = w.sign_cert(long_serial)
    not_yet = w.sign_cert(0x5003, not_before=T + day)
    critical_ext = w.sign_cert(0x5004, extra=[(x509.UnrecognizedExtension(UNKNOWN_OID,
                                                                           b"\x05\x00"), True)])
    arl_revoked = w.crl(w.sign_g2, [rev(0x0112, R.ca_compromise)], arl=True)
    arl_empty = w.crl(w.sign_g2, arl=True)

    C = Case
    return [
        C("sign-good-crl", "Signing certificate, complete CRL without it", good, Verdict.VALID,
          anchors=g1, crls=(empty_crl,)),
        C("address-change-sign-revoked", "Address change: old signing certificate revoked "
          "(affiliationChanged)", old_sign, Verdict.REVOKED, R.affiliation_changed, g1,
          crls=(moved_crl,)),
        C("address-change-auth-good", "Address change: the authentication certificate stays "
          "good", auth, Verdict.VALID, anchors=(w.auth_g1.certificate,), crls=(auth_crl,)),
        C("address-change-new-sign-good", "Address change: the new signing certificate is "
          "good", new_sign, Verdict.VALID, anchors=g1, crls=(moved_crl,)),
        C("loss-sign-hold", "Card lost: signing certificate on hold", lost_sign,
          Verdict.ON_HOLD, R.certificate_hold, g1, crls=(hold_sign_crl,)),
        C("loss-auth-hold", "Card lost: authentication certificate on hold", lost_auth,
          Verdict.ON_HOLD, R.certificate_hold, (w.auth_g1.certificate,), crls=(hold_auth_crl,)),
        C("found-revoked-not-released", "Lost card found: hold becomes a revocation "
          "(superseded), never released", lost_sign, Verdict.REVOKED, R.superseded, g1,
          crls=(w.crl(w.sign_g1, [rev(0x3001, R.superseded, 1)]),)),
        C("death-revoked", "Holder died: cessationOfOperation", good, Verdict.REVOKED,
          R.cessation_of_operation, g1,
          crls=(w.crl(w.sign_g1, [rev(0x1000, R.cessation_of_operation)]),)),
        C("key-compromise-invalidity-date", "Key compromise with an invalidity date", good,
          Verdict.REVOKED, R.key_compromise, g1, crls=(w.crl(w.sign_g1, [
              rev(0x1000, R.key_compromise, 1, T - 10 * day)]),)),
        C("user-request-no-reason-code", "Revoked at the holder's request: no reasonCode "
          "(unspecified)", good, Verdict.REVOKED, R.unspecified, g1,
          crls=(w.crl(w.sign_g1, [rev(0x1000, None)]),)),
        C("renewal-superseded", "Renewal: the old certificate superseded", good, Verdict.REVOKED,
          R.superseded, g1, crls=(w.crl(w.sign_g1, [rev(0x1000, R.superseded)]),)),
        C("rollover-g1-cert-both-anchors", "Two generations share one DN: a generation-1 "
          "certificate resolves to the generation-1 anchor by signature", g1_cert, Verdict.VALID,
          anchors=both, crls=(empty_crl, g2_crl)),
        C("rollover-g2-cert-both-anchors", "Generation-2 certificate with both anchors and "
          "both CRLs", g2_cert, Verdict.VALID, anchors=both, crls=(empty_crl, g2_crl)),
        C("rollover-g2-cert-old-anchor-link", "Only the old root is trusted: new-with-old link "
          "certificate bridges to generation 2", g2_cert, Verdict.VALID, anchors=g1,
          intermediates=(w.new_with_old,),
          crls=(g2_crl, w.crl(w.sign_g1, arl=True))),
        C("rollover-g1-cert-new-anchor-link", "Only the new root is trusted: old-with-new link "
          "certificate bridges to generation 1", g1_cert, Verdict.VALID,
          anchors=(w.sign_g2.certificate,), intermediates=(w.old_with_new,),
          crls=(empty_crl, arl_empty)),
        C("rollover-link-revoked-on-arl", "The old-with-new link certificate is revoked on the "
          "generation-2 ARL", g1_cert, Verdict.REVOKED, R.ca_compromise,
          (w.sign_g2.certificate,), (w.old_with_new,), crls=(empty_crl, arl_revoked)),
        C("rollover-arl-missing", "Link certificate without its ARL: no usable revocation "
          "information for the CA certificate", g1_cert, Verdict.NO_REVOCATION_INFO,
          anchors=(w.sign_g2.certificate,), intermediates=(w.old_with_new,),
          crls=(empty_crl,)),
        C("crl-signed-by-wrong-generation", "Generation-1 certificate, CRL under the same DN "
          "but signed by generation 2", g1_cert, Verdict.NO_REVOCATION_INFO, anchors=both,
          crls=(w.crl(w.sign_g2, scope_generation=1),)),
        C("crl-wrong-generation-revocation-ignored", "A revocation listed by the wrong "
          "generation does not count, so the status is unknown", g1_cert,
          Verdict.NO_REVOCATION_INFO, anchors=both,
          crls=(w.crl(w.sign_g2, [rev(0x4002, R.key_compromise)], scope_generation=1),)),
        C("stale-crl", "CRL past its nextUpdate", good, Verdict.STALE_REVOCATION_INFO, None,
          g1, crls=(w.crl(w.sign_g1, this_update=T - 3 * day, next_update=T - day),)),
        C("crl-next-update-boundary-valid", "Validation exactly at nextUpdate", good,
          Verdict.VALID, anchors=g1, crls=(w.crl(w.sign_g1, next_update=T),)),
        C("crl-next-update-boundary-stale", "One second after nextUpdate", good,
          Verdict.STALE_REVOCATION_INFO, anchors=g1, crls=(w.crl(w.sign_g1, next_update=T),),
          time=T + dt.timedelta(seconds=1)),
        C("crl-from-the-future", "CRL issued after the validation time", good,
          Verdict.NO_REVOCATION_INFO, anchors=g1,
          crls=(w.crl(w.sign_g1, this_update=T + day, next_update=T + 2 * day),)),
        C("crl-missing-next-update", "CRL without nextUpdate: freshness unknown", good,
          Verdict.STALE_REVOCATION_INFO, anchors=g1,
          crls=(_resign(w.crl(w.sign_g1), w.sign_g1.key, _without_next_update),)),
        C("delta-revokes", "Delta CRL on a complete CRL revokes the certificate",
          w.sign_cert(0x7001), Verdict.REVOKED, R.key_compromise, g1,
          crls=(base_crl, delta)),
        C("delta-remove-from-crl", "Hold on the complete CRL released by removeFromCRL in the "
          "delta", w.sign_cert(0x7002), Verdict.VALID, anchors=g1, crls=(base_crl, delta)),
        C("hold-without-delta", "Same certificate with the complete CRL only: on hold",
          w.sign_cert(0x7002), Verdict.ON_HOLD, R.certificate_hold, g1, crls=(base_crl,)),
        C("delta-hold-becomes-revocation", "Held on the complete CRL, revoked in the delta",
          w.sign_cert(0x7003), Verdict.REVOKED, R.key_compromise, g1, crls=(base_crl, delta)),
        C("delta-good", "Certificate on neither list", good, Verdict.VALID, anchors=g1,
          crls=(base_crl, delta)),
        C("delta-without-base", "A delta CRL alone is not enough", good,
          Verdict.NO_REVOCATION_INFO, anchors=g1, crls=(delta,)),
        C("delta-needs-newer-base", "Stale complete CRL and a delta built on a newer base",
          good, Verdict.NO_REVOCATION_INFO, anchors=g1, crls=(superseded_base, delta)),
        C("bad-crl-signature", "CRL signature does not verify", good, Verdict.BAD_CRL_SIGNATURE,
          anchors=g1, crls=(bytes(bad_sig),)),
        C("unknown-critical-crl-extension", "CRL with an unknown critical extension", good,
          Verdict.UNKNOWN_CRITICAL_EXTENSION, anchors=g1, crls=(w.crl(w.sign_g1, extra=[
              (x509.UnrecognizedExtension(UNKNOWN_OID, b"\x05\x00"), True)]),)),
        C("unknown-noncritical-crl-extension", "Unknown non-critical CRL extension is ignored",
          good, Verdict.VALID, anchors=g1, crls=(w.crl(w.sign_g1, extra=[
              (x509.UnrecognizedExtension(UNKNOWN_OID, b"\x05\x00"), False)]),)),
        C("unknown-critical-entry-extension", "A CRL entry with an unknown critical extension "
          "makes the whole CRL unusable", good, Verdict.UNKNOWN_CRITICAL_EXTENSION,
          anchors=g1, crls=(_entry_crl(w, 0x1234, True),)),
        C("unknown-noncritical-entry-extension", "Unknown non-critical entry extension",
          good, Verdict.VALID, anchors=g1, crls=(_entry_crl(w, 0x1234, False),)),
        C("serial-leading-zero-revoked", "Serial with its high bit set (leading 00 octet) is "
          "revoked", leading, Verdict.REVOKED, R.superseded, g1,
          crls=(w.crl(w.sign_g1, [rev(high_bit, R.superseded)]),)),
        C("serial-leading-zero-neighbours", "Serials next to it are listed, it is not", leading,
          Verdict.VALID, anchors=g1, crls=(w.crl(w.sign_g1, [
              rev(high_bit - 1, R.superseded), rev(high_bit + 1, R.superseded),
              rev(high_bit & ((1 << 56) - 1), R.superseded)]),)),
        C("serial-20-octets-revoked", "20-octet serial revoked", twenty, Verdict.REVOKED,
          R.affiliation_changed, g1,
          crls=(w.crl(w.sign_g1, [rev(long_serial, R.affiliation_changed)]),)),
        C("serial-20-octets-neighbour", "20-octet serial, only its neighbour listed", twenty,
          Verdict.VALID, anchors=g1,
          crls=(w.crl(w.sign_g1, [rev(long_serial - 1, R.affiliation_changed)]),)),
        C("large-crl-revoked", "3,000-entry CRL listing the certificate", busy_cert,
          Verdict.REVOKED, R.superseded, g1, crls=(busy_crl,)),
        C("large-crl-good", "3,000-entry CRL without the certificate", good, Verdict.VALID,
          anchors=g1, crls=(busy_crl,)),
        C("empty-crl", "CRL with no revokedCertificates field", good, Verdict.VALID, anchors=g1,
          crls=(empty_crl,)),
        C("utctime-2049-boundary", "Certificate expiring 2049-12-31T23:59:59Z (last UTCTime), "
          "validated that second", boundary, Verdict.VALID, anchors=g1, crls=(
              w.crl(w.sign_g1, this_update=dt.datetime(2049, 12, 31, tzinfo=dt.UTC),
                    next_update=dt.datetime(2050, 1, 2, tzinfo=dt.UTC)),),
          time=dt.datetime(2049, 12, 31, 23, 59, 59, tzinfo=dt.UTC)),
        C("generalizedtime-2050", "Certificate and CRL times in 2050 and later "
          "(GeneralizedTime)", late, Verdict.VALID, anchors=g1,
          crls=(w.crl(w.sign_g1, this_update=dt.datetime(2050, 6, 1, tzinfo=dt.UTC),
                      next_update=dt.datetime(2050, 6, 2, tzinfo=dt.UTC)),),
          time=dt.datetime(2050, 6, 1, 12, tzinfo=dt.UTC)),
        # A CRL fresh at the validation time, so "expired" is the only fault.
        C("expired-certificate", "One second past notAfter", boundary, Verdict.EXPIRED,
          anchors=g1, crls=(w.crl(w.sign_g1, this_update=dt.datetime(2049, 12, 31, 23,
                                                                     tzinfo=dt.UTC),
                                  next_update=dt.datetime(2050, 1, 2, tzinfo=dt.UTC)),),
          time=dt.datetime(2050, 1, 1, tzinfo=dt.UTC)),
        C("not-yet-valid-certificate", "Before notBefore", not_yet, Verdict.NOT_YET_VALID,
          anchors=g1, crls=(empty_crl,)),
        C("untrusted-issuer", "Issued by a CA that is not a trust anchor", rogue_cert,
          Verdict.UNTRUSTED_CHAIN, anchors=g1, crls=(empty_crl,)),
        C("unknown-critical-certificate-extension", "End-entity certificate with an unknown "
          "critical extension", critical_ext, Verdict.UNKNOWN_CRITICAL_EXTENSION, anchors=g1,
          crls=(empty_crl,)),
        C("no-revocation-information", "No CRL and no OCSP response: fail closed", good,
          Verdict.NO_REVOCATION_INFO, anchors=g1),
        C("ocsp-good", "OCSP good from the delegated responder (ocsp-nocheck)", ocsp_cert,
          Verdict.VALID, anchors=g1, ocsp=w.ocsp(ocsp_cert, w.sign_g1, G), method="ocsp",
          nonce=NONCE),
        C("ocsp-revoked", "OCSP revoked (affiliationChanged)", ocsp_cert, Verdict.REVOKED,
          R.affiliation_changed, g1, ocsp=w.ocsp(ocsp_cert, w.sign_g1, RV, revoked=(
              T - 2 * day, R.affiliation_changed)), method="ocsp", nonce=NONCE),
        C("ocsp-hold", "OCSP revoked with certificateHold", ocsp_cert, Verdict.ON_HOLD,
          R.certificate_hold, g1, ocsp=w.ocsp(ocsp_cert, w.sign_g1, RV, revoked=(
              T - 2 * day, R.certificate_hold)), method="ocsp", nonce=NONCE),
        C("ocsp-unknown", "OCSP unknown", ocsp_cert, Verdict.NO_REVOCATION_INFO, anchors=g1,
          ocsp=w.ocsp(ocsp_cert, w.sign_g1, UN), method="ocsp", nonce=NONCE),
        C("ocsp-stale", "OCSP response past its nextUpdate", ocsp_cert,
          Verdict.STALE_REVOCATION_INFO, anchors=g1,
          ocsp=w.ocsp(ocsp_cert, w.sign_g1, G, this_update=T - 2 * day,
                      next_update=T - day), method="ocsp", nonce=NONCE),
        C("ocsp-wrong-nonce", "OCSP response echoes another nonce", ocsp_cert,
          Verdict.NO_REVOCATION_INFO, anchors=g1,
          ocsp=w.ocsp(ocsp_cert, w.sign_g1, G, nonce=b"another-nonce-00"), method="ocsp",
          nonce=NONCE),
        C("ocsp-missing-nonce", "OCSP response without the nonce we sent", ocsp_cert,
          Verdict.NO_REVOCATION_INFO, anchors=g1,
          ocsp=w.ocsp(ocsp_cert, w.sign_g1, G, nonce=None), method="ocsp", nonce=NONCE),
        C("ocsp-unauthorised-responder", "Responder certificate issued by another CA",
          ocsp_cert, Verdict.NO_REVOCATION_INFO, anchors=g1,
          ocsp=w.ocsp(ocsp_cert, w.sign_g1, G, responder=w.rogue_responder),
          method="ocsp", nonce=NONCE),
        C("ocsp-signed-by-ca", "OCSP response signed by the issuing CA itself", ocsp_cert,
          Verdict.VALID, anchors=g1, ocsp=w.ocsp(ocsp_cert, w.sign_g1, G,
                                                 responder=w.sign_g1.certificate,
                                                 responder_key=w.sign_g1.key),
          method="ocsp", nonce=NONCE),
        C("ocsp-trylater", "Responder answers tryLater", ocsp_cert, Verdict.NO_REVOCATION_INFO,
          anchors=g1, ocsp=ocsp.OCSPResponseBuilder.build_unsuccessful(
              ocsp.OCSPResponseStatus.TRY_LATER).public_bytes(serialization.Encoding.DER),
          method="ocsp", nonce=NONCE),
        C("ocsp-unauthorized-status", "Responder answers unauthorized", ocsp_cert,
          Verdict.NO_REVOCATION_INFO, anchors=g1,
          ocsp=ocsp.OCSPResponseBuilder.build_unsuccessful(
              ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(serialization.Encoding.DER),
          method="ocsp", nonce=NONCE),
    ]


