"""Relying-party recipes: strict PIN enrolment and the staffed PIN-less tap.

Built on what every app needs before it can trust a card (municipal-apps §0, §2.6):

* ``enrol_strict`` — once, at the counter: the holder enters the 4-digit user-authentication
  PIN, the card signs a fresh challenge (nonce ‖ time ‖ terminal id) with the authentication
  key, and the signature, the chain to the right CA generation and revocation are checked.
  Only this proves who holds the card: the private key never leaves the chip.
* ``tap_check`` — later, face to face (公的個人認証法 §38の4, since 2024-05-27): the certificate
  is read without a PIN, validated, and the chip proves it is a genuine card through the 共通AP
  INTERNAL AUTHENTICATE under the MF CV chain.

What the tap cannot prove: nothing on a real card binds the 共通AP card key to the JPKI
authentication certificate (the certificate names no card serial; the CV card certificate names
no JPKI certificate). A genuine chip therefore cannot be told apart from another genuine chip
carrying a copy of the certificate by the tap alone. On a real card the JPKI EFs cannot be
rewritten after issuance, so such a card does not occur; a non-genuine device carrying a copied
certificate cannot answer INTERNAL AUTHENTICATE and is refused ``NOT_GENUINE``. For defence in
depth the identity also carries the chip's card serial (共通AP EF 0001), which enrolment records
and ``require_link`` compares at the tap; and the strict enrolment refuses any clone
(``BAD_SIGNATURE``), because a clone cannot sign with the certificate's key.

Every failure is a ``Refused`` with a machine-readable reason and a message telling the holder
or the staff what to do. Revocation fails closed: no usable CRL or OCSP answer, no pass.
Only APDUs through ``CardConnection`` reach the card, so the same code runs on the simulator
and on a real card in a PC/SC reader.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..clock import Clock, system_clock
from ..errors import MynacardError
from ..facts.cvc import KeyId
from ..iso7816.sw import SW
from ..jpki.crlindex import CRLFormatError, CRLIndex
from ..jpki.fetch import http_fetch
from ..jpki.validate import Fetcher, Policy, RevocationMethod, ValidationResult, Validator, Verdict
from ..readers.base import CardConnection, ReaderError
from .cardinfo import CardInfoClient
from .commands import CardCommandError, CardDataError, PinBlockedError, WrongPinError
from .jpki import JPKIClient, JPKIKey, digest_info
from .records import TamperedError

CHALLENGE_BYTES = 32
FETCH_RETRY_SECONDS = 5.0
"""After a failed CRL fetch, the URL is not tried again for this long (fail closed meanwhile)."""
CHALLENGE_CONTEXT = b"mynacard-enrol-v1"
"""Domain separation: a signature made for enrolment is never valid for anything else."""


@dataclass(frozen=True, slots=True)
class CardIdentity:
    """What an app may store to recognise a card later: never a name, address or My Number."""

    issuer_key_id: bytes
    """authorityKeyIdentifier.keyIdentifier of the auth certificate (its CA generation's key)."""
    serial: int
    """The auth certificate's serial number (発行番号)."""
    not_after: dt.datetime
    card_serial: str | None = None
    """The chip's card serial (共通AP EF 0001); None when it could not be read. Not part of
    ``link_key``: a hint that ``require_link`` compares, see the module notes."""

    @property
    def link_key(self) -> str:
        """``<issuer key id hex>:<serial hex>``, the value an app stores."""
        return f"{self.issuer_key_id.hex()}:{self.serial:x}"


class RefusalReason(Enum):
    WRONG_PIN = "wrong-pin"
    PIN_BLOCKED = "pin-blocked"
    NO_PIN = "no-pin"
    BAD_SIGNATURE = "bad-signature"
    NOT_GENUINE = "not-genuine"
    REVOKED = "revoked"
    ON_HOLD = "on-hold"
    EXPIRED = "expired"
    UNTRUSTED = "untrusted"
    NO_REVOCATION_INFO = "no-revocation-info"
    NOT_ENROLLED = "not-enrolled"
    CARD_ERROR = "card-error"


class Refused(MynacardError):
    """A refusal: ``reason`` for programs, ``message`` for the holder or the staff."""

    def __init__(self, reason: RefusalReason, message: str, *,
                 tries_left: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.tries_left = tries_left
        """For WRONG_PIN: the VERIFY tries that remain."""


# --- revocation configuration and the CRL index cache ---------------------------------------

@dataclass
class _CachedCRL:
    index: CRLIndex
    refresh_at: dt.datetime


class CRLCache:
    """Fetched CRL indexes, by URL, reused until ``crl_cache_seconds`` pass or the CRL's
    nextUpdate comes, whichever is first, so a tap never re-parses a million-entry list.

    The validator built on them is kept too: it remembers which CA key verified each CRL's
    signature, which over a large list costs as much as the parse. A failed refresh keeps the
    old index: it is still authoritative until its nextUpdate, after which the validator
    reports it stale and the check fails closed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, _CachedCRL] = {}
        self._failures: dict[str, tuple[dt.datetime, str]] = {}
        """URL → (when to try again, why it failed): a dead endpoint (say, the delta list's)
        must not cost every tap a network timeout."""
        self._validator: Validator | None = None

    def validator(self, urls: Iterable[str], config: RevocationConfig,
                  now: dt.datetime) -> tuple[Validator, list[str]]:
        """A CRL-only validator holding fresh indexes for ``urls``, and the fetch problems."""
        problems: list[str] = []
        fetch = config.fetch or http_fetch
        with self._lock:
            changed = self._validator is None
            for url in urls:
                cached = self._entries.get(url)
                if cached is not None and now < cached.refresh_at:
                    continue
                failed = self._failures.get(url)
                if failed is not None and now < failed[0]:
                    problems.append(failed[1])
                    continue
                try:
                    index = CRLIndex.load(fetch(url, None))
                except (OSError, CRLFormatError) as exc:
                    problem = f"cannot get {url}: {exc}"
                    retry = min(config.crl_cache_seconds, FETCH_RETRY_SECONDS)
                    self._failures[url] = (now + dt.timedelta(seconds=retry), problem)
                    problems.append(problem)
                    continue
                self._failures.pop(url, None)
                next_update = index.header.next_update_utc
                refresh_at = now + dt.timedelta(seconds=config.crl_cache_seconds)
                if next_update is not None:
                    refresh_at = min(refresh_at, next_update)
                self._entries[url] = _CachedCRL(index, refresh_at)
                changed = True
            if changed or self._validator is None:
                validator = Validator(config.trust_anchors, config.intermediates,
                                      policy=Policy(methods=(RevocationMethod.CRL,)),
                                      clock=config.clock)
                for url, entry in self._entries.items():
                    validator.add_crl_index(entry.index, url)
                self._validator = validator
            return self._validator, problems


@dataclass(frozen=True, slots=True, kw_only=True)
class RevocationConfig:
    trust_anchors: tuple[x509.Certificate, ...]
    """The authentication CA generations trusted (self-signed roots)."""
    method: Literal["crl", "ocsp"] = "crl"
    """CRL through the fast index (cached) or OCSP (one query per check); both fail closed."""
    intermediates: tuple[x509.Certificate, ...] = ()
    fetch: Fetcher | None = None
    """``fetch(url, body)``: GET a CRL (body None) or POST an OCSP request; default
    ``jpki.fetch.http_fetch``."""
    crl_cache_seconds: float = 300.0
    clock: Clock = system_clock
    crl_cache: CRLCache = field(default_factory=CRLCache, compare=False, repr=False)
    """Shared by every check made with this configuration."""


def _crl_urls(certificates: Iterable[x509.Certificate]) -> list[str]:
    """The http CRL and delta-CRL URLs the certificates name, in order, without repeats."""
    urls: list[str] = []
    for certificate in certificates:
        for cls in (x509.CRLDistributionPoints, x509.FreshestCRL):
            try:
                points = certificate.extensions.get_extension_for_class(cls).value
            except x509.ExtensionNotFound:
                continue
            for point in points:
                for name in point.full_name or ():
                    if (isinstance(name, x509.UniformResourceIdentifier)
                            and name.value.startswith("http://") and name.value not in urls):
                        urls.append(name.value)
    return urls


# --- certificate checks ---------------------------------------------------------------------

_REVOCATION_VERDICTS = {Verdict.NO_REVOCATION_INFO, Verdict.STALE_REVOCATION_INFO,
                        Verdict.BAD_CRL_SIGNATURE}


def _refusal(result: ValidationResult, certificate: x509.Certificate,
             fetch_problems: list[str]) -> Refused:
    verdict = result.verdict
    if verdict is Verdict.ON_HOLD:
        return Refused(RefusalReason.ON_HOLD,
                       "This card is suspended because it was reported lost (一時停止中のカード"
                       "です). Do not accept it; the holder should contact their municipal "
                       "office.")
    if verdict is Verdict.REVOKED:
        reason = result.reason.name if result.reason is not None else "unspecified"
        if result.reason is x509.ReasonFlags.superseded:
            advice = ("the certificate was replaced (renewal or a new card): use the current "
                      "card and re-enrol with the PIN")
        else:
            advice = ("the card can no longer be used; the holder should contact their "
                      "municipal office")
        return Refused(RefusalReason.REVOKED,
                       f"This card's authentication certificate is revoked ({reason}; このカード"
                       f"は利用停止中です): {advice}.")
    if verdict is Verdict.EXPIRED:
        return Refused(RefusalReason.EXPIRED,
                       "The card's authentication certificate expired on "
                       f"{certificate.not_valid_after_utc:%Y-%m-%d} (電子証明書の有効期限が切れて"
                       "います): the holder renews it at the municipal office, then re-enrols.")
    if verdict in _REVOCATION_VERDICTS or (verdict is Verdict.UNKNOWN_CRITICAL_EXTENSION
                                           and result.in_revocation_info):
        detail = "; ".join([*fetch_problems, result.detail])
        return Refused(RefusalReason.NO_REVOCATION_INFO,
                       f"The revocation status cannot be checked now ({detail}). Try again "
                       "later; the card is refused until the check succeeds.")
    return Refused(RefusalReason.UNTRUSTED,
                   f"The certificate is not from a trusted JPKI authentication CA "
                   f"({result.detail}): do not accept this card.")


def _issuer_key_id(certificate: x509.Certificate, result: ValidationResult) -> bytes:
    try:
        aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        if aki.key_identifier is not None:
            return aki.key_identifier
    except x509.ExtensionNotFound:
        pass
    # Without an AKI the validated path names the generation that signed it.
    return x509.SubjectKeyIdentifier.from_public_key(result.path[1].public_key()).digest


def check_certificate(certificate: x509.Certificate, config: RevocationConfig,
                      card_serial: str | None = None) -> CardIdentity:
    """Chain to a trusted CA generation, validity and revocation per ``config``; the identity
    to link, or ``Refused``."""
    now = config.clock()
    fetch_problems: list[str] = []
    if config.method == "crl":
        validator, fetch_problems = config.crl_cache.validator(
            _crl_urls([certificate, *config.intermediates]), config, now)
    else:
        # A fresh nonce per query: a replayed "good" answer does not count.
        validator = Validator(config.trust_anchors, config.intermediates,
                              policy=Policy(methods=(RevocationMethod.OCSP,),
                                            ocsp_nonce=secrets.token_bytes(16)),
                              clock=config.clock, fetcher=config.fetch or http_fetch)
    result = validator.validate(certificate, now)
    if not result.is_valid:
        raise _refusal(result, certificate, fetch_problems)
    return CardIdentity(_issuer_key_id(certificate, result), certificate.serial_number,
                        certificate.not_valid_after_utc, card_serial)


# --- card access ----------------------------------------------------------------------------

def _card_error(exc: Exception) -> Refused:
    return Refused(RefusalReason.CARD_ERROR,
                   f"The card could not be read ({exc}). Place the card on the reader again "
                   "and retry; if it keeps failing, the card may be damaged.")


def _read_auth_certificate(client: JPKIClient) -> x509.Certificate:
    try:
        return client.read_certificate(JPKIKey.AUTH)
    except ValueError as exc:
        raise Refused(RefusalReason.CARD_ERROR,
                      f"The card holds no readable authentication certificate ({exc}). The "
                      "holder should have the card checked at the municipal office.") from None


def _blocked_refusal(client: JPKIClient) -> Refused:
    """PIN_BLOCKED, or NO_PIN for what looks like a 顔認証 card.

    How the chip marks a 顔認証 card is not public (municipal-apps §1.2, [U]); our guess: both
    JPKI PINs unusable and no signing certificate. A holder whose PIN is merely blocked still has
    a usable signing password (or a signing certificate).
    """
    try:
        sign_usable = client.has_sign_certificate() or client.tries_left(JPKIKey.SIGN) > 0
    except CardCommandError:
        sign_usable = False
    if not sign_usable:
        return Refused(RefusalReason.NO_PIN,
                       "This looks like a 顔認証マイナンバーカード (no PIN is set): it cannot be "
                       "enrolled with a PIN (顔認証マイナンバーカードでは登録できません). Staff: "
                       "check the holder's face against the card and use the staff procedure.")
    return Refused(RefusalReason.PIN_BLOCKED,
                   "The user-authentication PIN is locked (暗証番号がロックされています). The "
                   "holder must have it reset at their municipal office (お住まいの市区町村窓口); "
                   "it cannot be reset here.")


def _verify_pin(client: JPKIClient, pin: str) -> None:
    try:
        tries = client.tries_left(JPKIKey.AUTH)
    except CardCommandError as exc:
        if exc.sw != SW.AUTH_METHOD_BLOCKED:
            raise
        tries = 0
    if tries == 0:
        raise _blocked_refusal(client)
    try:
        client.verify(JPKIKey.AUTH, pin)
    except WrongPinError as exc:
        if exc.tries_left == 0:
            raise _blocked_refusal(client) from None
        raise Refused(RefusalReason.WRONG_PIN,
                      f"Wrong PIN (暗証番号が違います): {exc.tries_left} "
                      f"{'try' if exc.tries_left == 1 else 'tries'} left before it locks.",
                      tries_left=exc.tries_left) from None
    except PinBlockedError:
        raise _blocked_refusal(client) from None


def challenge_message(nonce: bytes, when: dt.datetime, terminal_id: str) -> bytes:
    """What the card signs at enrolment: length-prefixed nonce, UTC time and terminal id, so no
    two different challenges produce the same bytes."""
    parts = [CHALLENGE_CONTEXT, nonce,
             when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode("ascii"),
             terminal_id.encode("utf-8")]
    return b"".join(len(part).to_bytes(2, "big") + part for part in parts)


def _chip_identity(connection: CardConnection,
                   cv_anchors: dict[KeyId, rsa.RSAPublicKey] | None) -> str:
    """The card serial; with anchors, only after the chip proved itself genuine."""
    try:
        return CardInfoClient(connection, cv_anchors).read().card_serial
    except TamperedError as exc:
        raise Refused(RefusalReason.NOT_GENUINE,
                      f"The chip could not prove it is a genuine My Number card ({exc}). Do not "
                      "accept it; staff should keep the card and follow the forgery procedure."
                      ) from None
    except (CardDataError, CardCommandError) as exc:
        if cv_anchors is None:
            raise
        # No CV chain, a malformed one, or a chip refusing the challenge: nothing vouches
        # for the chip, so fail closed.
        raise Refused(RefusalReason.NOT_GENUINE,
                      f"The chip offers no card-authentication chain ({exc}), so it cannot be "
                      "shown genuine. Do not accept it; staff should check the card.") from None


def enrol_strict(connection: CardConnection, pin: str, config: RevocationConfig, *,
                 terminal_id: str, challenge: bytes | None = None,
                 cv_anchors: dict[KeyId, rsa.RSAPublicKey] | None = None) -> CardIdentity:
    """Strict enrolment: the certificate is validated first (no PIN try is spent on a dead card),
    then VERIFY of PIN ``0018``, then the card signs a fresh challenge with the authentication
    key and the signature must verify under the certificate. ``challenge``: a server's nonce
    (default: 32 random bytes); ``cv_anchors``: also prove the chip genuine, as the tap does."""
    nonce = challenge if challenge is not None else secrets.token_bytes(CHALLENGE_BYTES)
    try:
        client = JPKIClient(connection)
        certificate = _read_auth_certificate(client)
        identity = check_certificate(certificate, config)
        _verify_pin(client, pin)
        message = challenge_message(nonce, config.clock(), terminal_id)
        signature = client.sign_digest_info(JPKIKey.AUTH, digest_info(message))
        card_serial = _chip_identity(connection, cv_anchors)
    except (CardCommandError, CardDataError, ReaderError) as exc:
        raise _card_error(exc) from None
    public_key = certificate.public_key()
    try:
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise InvalidSignature
        public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise Refused(RefusalReason.BAD_SIGNATURE,
                      "The card's signature does not match its certificate: the certificate "
                      "is not this card's own (a copied certificate). Do not enrol this card."
                      ) from None
    return CardIdentity(identity.issuer_key_id, identity.serial, identity.not_after,
                        card_serial)


def tap_check(connection: CardConnection, config: RevocationConfig, *,
              cv_anchors: dict[KeyId, rsa.RSAPublicKey]) -> CardIdentity:
    """The PIN-less staffed tap: read the authentication certificate, validate it (chain,
    validity, revocation), and have the chip prove it is genuine. Matching the identity to the
    app's enrolled link is the app's job (``require_link`` does the comparison)."""
    try:
        client = JPKIClient(connection)
        certificate = _read_auth_certificate(client)
        card_serial = _chip_identity(connection, cv_anchors)
    except (CardCommandError, CardDataError, ReaderError) as exc:
        raise _card_error(exc) from None
    return check_certificate(certificate, config, card_serial)


def require_link(tapped: CardIdentity, enrolled: CardIdentity | None) -> None:
    """Refuse a tap whose certificate has no enrolled link (``NOT_ENROLLED``: e.g. renewed),
    or whose chip is another card than the one enrolled (``NOT_GENUINE``)."""
    if enrolled is None or enrolled.link_key != tapped.link_key:
        raise Refused(RefusalReason.NOT_ENROLLED,
                      "This card is not enrolled, or its certificate was renewed (登録がありません"
                      "／再登録が必要です): enrol again at the counter with the PIN.")
    if (enrolled.card_serial is not None and tapped.card_serial is not None
            and enrolled.card_serial != tapped.card_serial):
        raise Refused(RefusalReason.NOT_GENUINE,
                      "The certificate belongs to another card than this chip (a copied "
                      "certificate). Do not accept it; staff should keep the card.")

