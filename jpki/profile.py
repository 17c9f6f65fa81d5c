"""JPKI certificate profiles (facts §11): CA certificates and the two end-entity certificates.

Pure builders: they take keys and data and return ``cryptography`` certificates.
The simulator's DNs say ``O=JPKI-SIM`` so nothing issued here can pass for J-LIS.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from asn1crypto import core as asn1
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from ..facts.person import Resident, jpki_birth_date, nth_birthday_after

JST = dt.timezone(dt.timedelta(hours=9), "JST")

SIM_ORGANIZATION = "JPKI-SIM"
JLIS_OU = "Japan Agency for Local Authority Information Systems"


class OID:
    """Object identifiers of the JPKI arc 1.2.392.200149 (J-LIS)."""

    POLICY_SIGN = x509.ObjectIdentifier("1.2.392.200149.8.5.1.1.20")
    POLICY_AUTH = x509.ObjectIdentifier("1.2.392.200149.8.5.1.3.30")
    NAME = x509.ObjectIdentifier("1.2.392.200149.8.5.5.1")
    NAME_SUBSTITUTE_FLAGS = x509.ObjectIdentifier("1.2.392.200149.8.5.5.2")
    SEX = x509.ObjectIdentifier("1.2.392.200149.8.5.5.3")
    BIRTH_DATE = x509.ObjectIdentifier("1.2.392.200149.8.5.5.4")
    ADDRESS = x509.ObjectIdentifier("1.2.392.200149.8.5.5.5")
    ADDRESS_SUBSTITUTE_FLAGS = x509.ObjectIdentifier("1.2.392.200149.8.5.5.6")


@dataclass(frozen=True, slots=True)
class CAKind:
    key: str
    """``sign`` or ``auth``."""
    ou: str


SIGN_CA = CAKind("sign", "JPKI for digital signature")
AUTH_CA = CAKind("auth", "JPKI for user authentication")
CA_KINDS = {SIGN_CA.key: SIGN_CA, AUTH_CA.key: AUTH_CA}


def ca_name(kind: CAKind) -> x509.Name:
    """All generations of one CA share this DN, as J-LIS's 2015/2019/2023 roots do."""
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, SIM_ORGANIZATION),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, kind.ou),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, JLIS_OU),
    ])


def _service_name() -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "公的個人認証サービス(シミュレータ)"),
    ])


def build_ca_certificate(
    kind: CAKind,
    key: rsa.RSAPrivateKey,
    serial: int,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    """A self-signed root in the shape of the published J-LIS roots (facts §11.1)."""
    name = ca_name(kind)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DirectoryName(_service_name())]),
                       critical=False)
        .add_extension(x509.CRLDistributionPoints([
            x509.DistributionPoint([x509.DirectoryName(name)], None, None, None)]),
            critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )


def build_link_certificate(
    kind: CAKind,
    subject_key: rsa.RSAPublicKey,
    issuer_key: rsa.RSAPrivateKey,
    serial: int,
    not_before: dt.datetime,
    not_after: dt.datetime,
    arl_url: str | None,
) -> x509.Certificate:
    """A self-issued rollover certificate between two generations of one CA (RFC 4210 §4.4).

    Subject and issuer are the same DN; only the key identifiers tell the generations apart, so a
    path builder must pick the issuer by key, not by name.
    """
    name = ca_name(kind)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(subject_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(subject_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer_key.public_key()), critical=False)
    )
    if arl_url:
        builder = builder.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            [x509.UniformResourceIdentifier(arl_url)], None, None, None)]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def build_responder_certificate(
    kind: CAKind,
    responder_key: rsa.RSAPublicKey,
    issuer: x509.Certificate,
    issuer_key: rsa.RSAPrivateKey,
    serial: int,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    """A delegated OCSP responder (RFC 6960 §4.2.2.2) with id-pkix-ocsp-nocheck."""
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, SIM_ORGANIZATION),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, kind.ou),
        x509.NameAttribute(NameOID.COMMON_NAME, "OCSP Responder"),
    ])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject)
        .public_key(responder_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.OCSP_SIGNING]),
                       critical=False)
        .add_extension(x509.OCSPNoCheck(), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer_key.public_key()), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(responder_key), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )


def _key_usage(*, digital_signature: bool = False, non_repudiation: bool = False,
               key_cert_sign: bool = False, crl_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature, content_commitment=non_repudiation,
        key_encipherment=False, data_encipherment=False, key_agreement=False,
        key_cert_sign=key_cert_sign, crl_sign=crl_sign, encipher_only=False,
        decipher_only=False)


def certificate_expiry(issued: dt.date, birth_date: dt.date, card_expiry: dt.date) -> dt.datetime:
    """End (JST) of the 5th birthday after issuance, capped by the card's own expiry."""
    end = min(nth_birthday_after(issued, birth_date, 5), card_expiry)
    return dt.datetime.combine(end, dt.time(23, 59, 59), JST).astimezone(dt.UTC)


def _utf8_other_name(oid: x509.ObjectIdentifier, text: str) -> x509.OtherName:
    # cryptography wraps the value in the [0] EXPLICIT tag itself; we supply the UTF8String.
    return x509.OtherName(oid, asn1.UTF8String(text).dump())


def substitute_flags(text: str) -> str:
    """One ``0``/``1`` per character: 1 where the character was replaced by a substitute.

    The simulator writes names as given, so nothing is substituted.
    """
    return "0" * len(text)


@dataclass(frozen=True, slots=True)
class EndEntityRequest:
    """What an issuing CA needs besides the resident's data."""

    serial: int
    not_before: dt.datetime
    not_after: dt.datetime
    crl_distribution_point: str | None = None
    ocsp_url: str | None = None


def _end_entity_builder(
    subject: x509.Name, public_key: rsa.RSAPublicKey, issuer: x509.Certificate,
    request: EndEntityRequest,
) -> x509.CertificateBuilder:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(request.serial)
        .not_valid_before(request.not_before)
        .not_valid_after(request.not_after)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer.public_key()), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if request.crl_distribution_point:
        builder = builder.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            [x509.UniformResourceIdentifier(request.crl_distribution_point)], None, None, None)]),
            critical=False)
    if request.ocsp_url:
        builder = builder.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
            x509.AuthorityInformationAccessOID.OCSP,
            x509.UniformResourceIdentifier(request.ocsp_url))]), critical=False)
    return builder


def build_auth_certificate(
    identifier: str, public_key: rsa.RSAPublicKey, issuer: x509.Certificate,
    issuer_key: rsa.RSAPrivateKey, request: EndEntityRequest,
) -> x509.Certificate:
    """利用者証明用電子証明書: ``C=JP, CN=<opaque id>``, no personal data."""
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
        x509.NameAttribute(NameOID.COMMON_NAME, identifier),
    ])
    return (
        _end_entity_builder(subject, public_key, issuer, request)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.CertificatePolicies([x509.PolicyInformation(OID.POLICY_AUTH, None)]),
                       critical=False)
        .sign(issuer_key, hashes.SHA256())
    )


def build_sign_certificate(
    resident: Resident, common_name: str, public_key: rsa.RSAPublicKey,
    issuer: x509.Certificate, issuer_key: rsa.RSAPrivateKey, request: EndEntityRequest,
) -> x509.Certificate:
    """署名用電子証明書: residence in ``L=``, the 基本4情報 in subjectAltName otherNames.

    The otherNames follow the order observed on a test card: 1, 4, 3, 5, 2, 6.
    """
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
        x509.NameAttribute(NameOID.LOCALITY_NAME, resident.prefecture_romaji),
        x509.NameAttribute(NameOID.LOCALITY_NAME, resident.municipality_romaji),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])
    san = x509.SubjectAlternativeName([
        _utf8_other_name(OID.NAME, resident.name),
        _utf8_other_name(OID.BIRTH_DATE, jpki_birth_date(resident.birth_date)),
        _utf8_other_name(OID.SEX, resident.sex.value),
        _utf8_other_name(OID.ADDRESS, resident.address),
        _utf8_other_name(OID.NAME_SUBSTITUTE_FLAGS, substitute_flags(resident.name)),
        _utf8_other_name(OID.ADDRESS_SUBSTITUTE_FLAGS, substitute_flags(resident.address)),
    ])
    return (
        _end_entity_builder(subject, public_key, issuer, request)
        .add_extension(_key_usage(digital_signature=True, non_repudiation=True), critical=True)
        .add_extension(x509.CertificatePolicies([x509.PolicyInformation(OID.POLICY_SIGN, None)]),
                       critical=True)
        .add_extension(san, critical=False)
        .sign(issuer_key, hashes.SHA256())
    )


def read_sign_certificate_facts(cert: x509.Certificate) -> dict[str, str]:
    """The otherName values of a signing certificate, keyed by OID dotted string."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return {}
    facts = {}
    for other in san.get_values_for_type(x509.OtherName):
        value = asn1.Asn1Value.load(other.value)
        facts[other.type_id.dotted_string] = value.native if isinstance(value.native, str) else ""
    return facts
