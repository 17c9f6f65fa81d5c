"""Card issuance: a persona in, a complete card image out.

Keys are generated per card (as the real card generates them on chip), the
certificates come from the simulator PKI, and the image is written all at once,
after everything that can be refused has been checked (see ``issue_card``).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ...facts import cvc
from ...facts.atr import ATRS, DEFAULT_ATR
from ...facts.jpki import CERTIFICATE_EF_SIZE
from ...facts.person import code_b, era_yymmdd
from ...facts.pins import AUTH_PIN, BLOCKED_AT_ISSUANCE, RESIDENT_PIN, SIGN_PASSWORD, TEXT_PIN
from ...facts.text import BasicFour, my_number_ef
from ...facts.visual import CardFace
from ...gp import scp03
from ...jpki import lifecycle
from ...jpki.ca import CardCertificates, IssuanceError, SimulatorPKI, new_rsa_key
from ...jpki.cvca import Issued, SimulatorCVCA
from ...jpki.store import Role
from .. import common_ap, isd, jpki_ap, juki_ap, text_ap, visual_ap
from ..jpki_ap import JPKIApplication, TokenInfo, certificate_files
from ..storage import CardStore, ImageContent, image_key
from . import face
from .issuer_keys import load_or_create_master
from .persona import Persona, clock_today

Content = tuple[dict[str, bytes], dict[str, bytes], dict[str, bytes], dict[str, int]]
"""(files, keys, pins, counter limits) of one application, keyed ``"<app>/<FID hex>"``."""
CONTACT_ATR_NAMES = ("jpki", "jpki-02", "jpki-03", "jpki-04", "jpki-05")

PKI_CARD_ID = "pki_card_id"
"""Image metadata key: the card's id in the PKI store (``perso.reissue`` uses it)."""


def pkcs8_der(key: rsa.RSAPrivateKey) -> bytes:
    """How the card image holds a private key (unencrypted PKCS#8, DER)."""
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def jpki_content(persona: Persona) -> tuple[Content, dict[Role, rsa.RSAPrivateKey]]:
    """Everything of the JPKI-AP but its certificates: (files, keys, pins, counter limits) and
    the key pairs the certificates will certify (no signing key under 15)."""
    ef = _namer(JPKIApplication.NAME)
    card_keys = {Role.AUTH: new_rsa_key()}
    if persona.gets_sign_certificate:
        card_keys[Role.SIGN] = new_rsa_key()
    files = {ef(jpki_ap.EF_TOKEN_INFO): TokenInfo().encode()}
    keys = {ef(jpki_ap.EF_AUTH_KEY): pkcs8_der(card_keys[Role.AUTH])}
    # A counterfeit copies only what is readable without a PIN: no signing key or certificate.
    if Role.SIGN in card_keys and persona.genuine:
        keys[ef(jpki_ap.EF_SIGN_KEY)] = pkcs8_der(card_keys[Role.SIGN])
    pins = {ef(jpki_ap.EF_AUTH_PIN): persona.pins.auth.encode(),
            ef(jpki_ap.EF_SIGN_PIN): persona.pins.sign.encode()}
    limits = {ef(jpki_ap.EF_AUTH_PIN): AUTH_PIN.max_tries,
              ef(jpki_ap.EF_SIGN_PIN): SIGN_PASSWORD.max_tries}
    return (files, keys, pins, limits), card_keys


def jpki_certificate_files(certs: CardCertificates, *, with_sign: bool = True) -> dict[str, bytes]:
    """The certificate EFs (``with_sign`` False: no signing certificate on the card); a
    certificate larger than its EF (a long name and address make the signing certificate
    grow) is an ``IssuanceError``."""
    der = serialization.Encoding.DER
    named = {"authentication": certs.auth, "authentication CA": certs.auth_ca,
             "signing CA": certs.sign_ca, "signing": certs.sign}
    for label, cert in named.items():
        if cert is not None and len(cert.public_bytes(der)) > CERTIFICATE_EF_SIZE:
            raise IssuanceError(
                f"the {label} certificate would be {len(cert.public_bytes(der))} bytes, larger "
                f"than its {CERTIFICATE_EF_SIZE}-byte card EF (shorten the name or address)")
    return certificate_files(
        auth=certs.auth.public_bytes(der), auth_ca=certs.auth_ca.public_bytes(der),
        sign_ca=certs.sign_ca.public_bytes(der),
        sign=certs.sign.public_bytes(der) if certs.sign and with_sign else None)


def _namer(app: str) -> Callable[[int], str]:
    return lambda fid: image_key(app, fid)


def persona_code_b(persona: Persona) -> str:
    return code_b(persona.resident.birth_date, persona.card_expiry.year, persona.security_code)


def text_content(persona: Persona, signer: Issued) -> Content:
    """券面事項入力補助AP: records signed by the municipality key certified in EF 0004."""
    ef = _namer(text_ap.TextApplication.NAME)

    def ef_name(name: str) -> str:
        return image_key(text_ap.TextApplication.NAME, name)

    resident = persona.current_resident
    ap_key, session_key = new_rsa_key(), new_rsa_key()
    number_file = my_number_ef(persona.my_number)
    four = BasicFour(resident.name, resident.address, resident.birth_date, resident.sex.value)
    files = {
        ef(text_ap.EF_MY_NUMBER): number_file,
        ef(text_ap.EF_ATTRIBUTES): four.encode(),
        ef(text_ap.EF_INTEGRITY): text_ap.integrity_ef(number_file, four, signer.authority),
        ef(text_ap.EF_CERTIFICATE): signer.certificate.encode(),
        ef(text_ap.EF_AP_INFO): text_ap.ap_info_ef(secrets.token_bytes(32)),
        ef(text_ap.EF_SESSION_KEY): text_ap.session_key_ef(session_key.public_key()),
        ef(text_ap.EF_SIGNED_KEY): text_ap.signed_key_ef(ap_key.public_key(), signer.authority),
    }
    keys = {ef(text_ap.EF_AP_KEY): pkcs8_der(ap_key),
            ef_name(text_ap.SESSION_KEY): pkcs8_der(session_key)}
    pins = {ef(text_ap.EF_PIN): persona.pins.text.encode(),
            ef(text_ap.EF_BLOCKED): secrets.token_bytes(8),
            ef(text_ap.EF_CODE_A): persona.my_number.encode(),
            ef(text_ap.EF_CODE_B): persona_code_b(persona).encode()}
    limits = {ef(text_ap.EF_PIN): TEXT_PIN.max_tries,
              ef(text_ap.EF_BLOCKED): BLOCKED_AT_ISSUANCE.max_tries,
              ef(text_ap.EF_CODE_A): persona.retry_limits.code_a,
              ef(text_ap.EF_CODE_B): persona.retry_limits.code_b}
    return files, keys, pins, limits


def visual_content(persona: Persona, signer: Issued) -> Content:
    """券面事項確認AP: age, face and number-image records with the card face images."""
    ef = _namer(visual_ap.VisualApplication.NAME)
    resident = persona.resident
    card_key = new_rsa_key()
    public = card_key.public_key()
    images = persona.face
    card_face = CardFace(
        birth_date=resident.birth_date, sex=resident.sex.value, expiry=persona.card_expiry,
        name_png=images.name or face.text_png(resident.name),
        address_png=images.address or face.text_png(resident.address),
        photo_jp2=images.photo or face.placeholder_photo(persona.my_number),
        security_code_png=face.digits_png(persona.security_code, face.SECURITY_CODE_IMAGE_SIZE))
    number_png = face.digits_png(persona.my_number, face.MY_NUMBER_IMAGE_SIZE)
    files = {
        ef(visual_ap.EF_AGE): visual_ap.age_ef(resident.birth_date, public, signer.authority),
        ef(visual_ap.EF_FACE): visual_ap.face_ef(card_face, public, signer.authority),
        ef(visual_ap.EF_AP_INFO): visual_ap.ap_info_ef(resident.municipality_code,
                                                       secrets.token_bytes(256)),
        ef(visual_ap.EF_CERTIFICATE): signer.certificate.encode(),
        ef(visual_ap.EF_NUMBER_IMAGE): visual_ap.number_image_ef(number_png, public,
                                                                 signer.authority),
        ef(visual_ap.EF_UNKNOWN): b"\xff" * 16,
    }
    keys = {ef(visual_ap.EF_AP_KEY): pkcs8_der(card_key)}
    pins = {ef(visual_ap.EF_BIRTH_KEY): era_yymmdd(resident.birth_date).encode(),
            ef(visual_ap.EF_CODE_B): persona_code_b(persona).encode(),
            ef(visual_ap.EF_CODE_A): persona.my_number.encode()}
    limits = {ef(visual_ap.EF_BIRTH_KEY): persona.retry_limits.birth,
              ef(visual_ap.EF_CODE_B): persona.retry_limits.code_b,
              ef(visual_ap.EF_CODE_A): persona.retry_limits.code_a}
    return files, keys, pins, limits


def resident_content(persona: Persona, cvca: SimulatorCVCA) -> Content:
    """共通AP and 住基AP (card info, authentication key, the two resident PINs) and the MF
    data objects, whose lower CV certificate certifies the 共通AP authentication key."""
    common, juki, mf = (_namer(common_ap.CommonApplication.NAME),
                        _namer(juki_ap.JukiApplication.NAME), _namer(isd.IssuerSecurityDomain.NAME))
    code = persona.resident.municipality_code
    expiry = f"{persona.card_expiry:%Y%m%d}"
    auth_key = new_rsa_key()
    intermediate = cvca.municipality(cvc.ROOT_MF, code)
    card_key_id = cvc.KeyId(f"{cvc.SIMULATOR_PREFIX}{code}9", persona.card_serial[-3:])
    lower = intermediate.authority.certify(card_key_id, auth_key.public_key())
    atr = ATRS[persona.atr if persona.atr in CONTACT_ATR_NAMES else DEFAULT_ATR]
    files = {
        common(common_ap.EF_CARD_INFO): common_ap.card_info_records(persona.card_serial, code,
                                                                   expiry),
        mf(isd.TAG_ISSUER_ID): intermediate.authority.key_id.encode(),
        mf(isd.TAG_CARD_ID): persona.card_serial.encode(),
        mf(isd.TAG_CARD_RECOGNITION): isd.card_recognition_data(),
        mf(isd.TAG_MUNICIPALITY): code.encode(),
        mf(isd.TAG_EXPIRY): expiry.encode(),
        mf(isd.TAG_INTERMEDIATE_KEY_ID): intermediate.authority.key_id.encode(),
        mf(isd.TAG_CHAIN_UPPER): intermediate.certificate.contents(),
        mf(isd.TAG_CHAIN_LOWER): lower.contents(),
        mf(0x5F51): atr[1:],
    }
    keys = {common(common_ap.EF_AUTH_KEY): pkcs8_der(auth_key)}
    pins = {common(common_ap.EF_PIN): persona.pins.resident.encode(),
            juki(juki_ap.EF_PIN): persona.pins.resident.encode()}
    limits = {common(common_ap.EF_PIN): RESIDENT_PIN.max_tries,
              juki(juki_ap.EF_PIN): RESIDENT_PIN.max_tries}
    return files, keys, pins, limits


def card_manager_content(persona: Persona, master: bytes) -> Content:
    """The ISD's SCP03 static keys, diversified from the issuer master key by the card's key
    diversification data (the last 10 digits of the card serial)."""
    diversification = persona.card_serial[-scp03.DIVERSIFICATION_LENGTH:].encode("ascii")
    keys = scp03.StaticKeys.diversified(master, diversification)
    name = isd.IssuerSecurityDomain.NAME
    return ({image_key(name, isd.SCP_KEYS): keys.encode(),
             image_key(name, isd.SCP_DIVERSIFICATION): diversification}, {}, {}, {})


def default_cvca(pki: SimulatorPKI) -> SimulatorCVCA:
    """The CV hierarchy kept beside the PKI (``<pki>/cvc``), in memory for a PKI without one."""
    return SimulatorCVCA(pki.path / "cvc" if pki.path is not None else None)


def pin_key_names(pin: str) -> tuple[str, ...]:
    """The image's key references behind a persona PIN name (``pins.blocked`` spells them)."""
    return {"auth": (image_key(JPKIApplication.NAME, jpki_ap.EF_AUTH_PIN),),
            "sign": (image_key(JPKIApplication.NAME, jpki_ap.EF_SIGN_PIN),),
            "text": (image_key(text_ap.TextApplication.NAME, text_ap.EF_PIN),),
            "resident": (image_key(common_ap.CommonApplication.NAME, common_ap.EF_PIN),
                         image_key(juki_ap.JukiApplication.NAME, juki_ap.EF_PIN))}[pin]


def issuance_time(persona: Persona, pki: SimulatorPKI) -> dt.datetime:
    """A card issued today (by the PKI's clock) is issued now; an earlier or later day at
    09:00 UTC (18:00 JST), so a persona file always yields the same dates."""
    if persona.issued == clock_today(pki.clock):
        return pki.clock()
    return dt.datetime.combine(persona.issued, dt.time(9, 0), dt.UTC)


def _face_auth(pins: dict[str, bytes], limits: dict[str, int]) -> None:
    """顔認証マイナンバーカード: no PIN was ever set. Our representation (the chip's is not
    public): every PIN key reference blocked from issuance, like the 券面事項入力補助AP's
    never-set reference, so VERIFY answers 6984 and an empty VERIFY 63C0."""
    for pin in ("auth", "sign", "text", "resident"):
        for name in pin_key_names(pin):
            pins[name] = secrets.token_bytes(8)
            limits[name] = 0


def _counterfeit(keys: dict[str, bytes]) -> dict[str, bytes]:
    """A cloned card: its maker could copy every readable EF but no private key, so each key
    slot holds a key of its own that no certificate (X.509 or CV) certifies."""
    return {name: pkcs8_der(new_rsa_key()) for name in keys}


def issue_card(persona: Persona, out: Path, pki: SimulatorPKI,
               issued_at: dt.datetime | None = None,
               cvca: SimulatorCVCA | None = None) -> Path:
    """Write a new card image for ``persona`` into ``out`` (which must be absent or empty).

    ``issued_at`` overrides the issuance time (default: ``issuance_time``).

    The PKI store and the image agree whatever fails: the output directory and every record
    are checked before the store is touched; the certificates are issued in one transaction
    that commits only once each fits its EF; if the image then cannot be written, the
    certificates are revoked (cessationOfOperation) and the card closed at once, so no live
    certificate names a card that does not exist. (A kill of the process in that last window
    leaves live certificates whose private keys died with it: nobody can use them.) The
    persona's ``history`` is then replayed through the lifecycle events, so the PKI store
    (CRLs, OCSP) and the image agree; a blocked PIN is blocked last.
    """
    out = Path(out)
    CardStore.check_target(out)
    issued_at = issued_at or issuance_time(persona, pki)
    # The PKI store knows the card by this id; later lifecycle events find it in the image.
    card_id = secrets.token_hex(8)
    cvca = cvca or default_cvca(pki)
    code = persona.resident.municipality_code
    jpki_part, card_keys = jpki_content(persona)
    files, keys, pins, limits = jpki_part
    for part in (text_content(persona, cvca.municipality(cvc.ROOT_TEXT, code)),
                 visual_content(persona, cvca.municipality(cvc.ROOT_VISUAL, code)),
                 resident_content(persona, cvca),
                 card_manager_content(persona, load_or_create_master(pki.path)
                                      if pki.path is not None else secrets.token_bytes(32))):
        for mine, theirs in zip((files, keys, pins, limits), part, strict=True):
            mine.update(theirs)
    if persona.face_auth:
        _face_auth(pins, limits)

    def accept(certs: CardCertificates) -> None:
        files.update(jpki_certificate_files(certs, with_sign=persona.genuine))

    sign_key = card_keys.get(Role.SIGN)
    lifecycle.issue_card(pki, persona.resident, card_keys[Role.AUTH].public_key(),
                         sign_key.public_key() if sign_key else None, issued_at,
                         persona.card_expiry, card_id=card_id, accept=accept)
    metadata = {"issued": persona.issued.isoformat(),
                "card_expiry": persona.card_expiry.isoformat(),
                "holder": persona.resident.name, "kind": persona.kind}
    if persona.genuine:
        metadata[PKI_CARD_ID] = card_id
    else:
        # The PKI's card is the genuine one: lifecycle events must never reach it via a fake.
        keys = _counterfeit(keys)
        metadata["genuine"] = False
    content = ImageContent(atr=persona.atr, files=files, keys=keys, pins=pins,
                           counter_max=limits, metadata=metadata)
    try:
        CardStore.create(out, content)
    except BaseException:
        # Revoked as of their own issue time: the certificates never served a moment.
        lifecycle.abandon_issuance(pki, card_id, issued_at)
        raise
    if persona.history:
        # perso.reissue builds on this module (PKI_CARD_ID, pkcs8_der): import it late.
        from .reissue import replay_history
        replay_history(pki, out, persona)
    if persona.blocked_pins:
        store = CardStore.open(out)
        try:
            for pin in persona.blocked_pins:
                for name in pin_key_names(pin):
                    store.set_counter(name, 0)
        finally:
            store.close()
    return out
