"""Certificate path validation with CRL (complete + delta) and OCSP revocation checking.

RFC 5280 §6.1 (signatures, validity, name chaining, basicConstraints, pathLenConstraint,
keyUsage, critical extensions, certificate policies in ``policies.py`` and name constraints in
``name_constraints.py``) and §6.3 (CRL processing with distribution points,
reason masks, indirect CRLs, separate CRL-signing keys and delta CRLs); RFC 6960 responses from
the CA or a delegated responder.

Path building picks issuers by name *and* signature: several generations of one CA share a DN,
so a candidate whose key does not verify the certificate is never part of a path.

Every failure is a typed ``ValidationResult``; malformed input and any unexpected condition give
a failing verdict, never an exception (fail closed).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from ..clock import Clock, system_clock
from .certid import key_hash, name_hash
from .crlindex import CRLFormatError, CRLIndex, RevokedEntry, verify_signature
from .name_constraints import NameConstraintError, check_name_constraints
from .names import name_key, names_match
from .policies import ANY_POLICY, PolicyError, PolicyInputs, check_policies

MAX_PATH_DEPTH = 12
MAX_PATHS = 64
MAX_SIGNER_DEPTH = 4


class Verdict(Enum):
    VALID = "valid"
    REVOKED = "revoked"
    ON_HOLD = "on-hold"
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    UNTRUSTED_CHAIN = "untrusted-chain"
    INVALID_PATH = "invalid-path"
    """A chain to a trust anchor exists but breaks a constraint (basicConstraints, keyUsage…)."""
    NO_REVOCATION_INFO = "no-usable-revocation-info"
    STALE_REVOCATION_INFO = "stale-revocation-info"
    BAD_CRL_SIGNATURE = "bad-crl-signature"
    UNKNOWN_CRITICAL_EXTENSION = "unknown-critical-extension"
    MALFORMED = "malformed"


_PATH_VERDICTS = {Verdict.EXPIRED, Verdict.NOT_YET_VALID, Verdict.UNTRUSTED_CHAIN,
                  Verdict.INVALID_PATH, Verdict.MALFORMED}


@dataclass(frozen=True, slots=True)
class ValidationResult:
    verdict: Verdict
    detail: str
    reason: x509.ReasonFlags | None = None
    revocation_date: dt.datetime | None = None
    invalidity_date: dt.datetime | None = None
    path: tuple[x509.Certificate, ...] = ()
    in_revocation_info: bool = False
    """True when the problem lies in a CRL or OCSP response rather than in the path."""

    @property
    def is_valid(self) -> bool:
        return self.verdict is Verdict.VALID

    @property
    def failure_kind(self) -> str:
        """The coarse outcome NIST PKITS tabulates: valid, revoked, path-invalid,
        no-usable-revocation-info or stale-revocation-info."""
        if self.verdict is Verdict.VALID:
            return "valid"
        if self.verdict in (Verdict.REVOKED, Verdict.ON_HOLD):
            return "revoked"
        if self.verdict is Verdict.STALE_REVOCATION_INFO:
            return "stale-revocation-info"
        if self.verdict in _PATH_VERDICTS or (
                self.verdict is Verdict.UNKNOWN_CRITICAL_EXTENSION and not self.in_revocation_info):
            return "path-invalid"
        return "no-usable-revocation-info"


class RevocationMethod(Enum):
    OCSP = "ocsp"
    CRL = "crl"


@dataclass(frozen=True, slots=True)
class Policy:
    methods: tuple[RevocationMethod, ...] = (RevocationMethod.OCSP, RevocationMethod.CRL)
    """Tried in order; the first definitive answer (good or revoked) wins."""
    require_revocation_info: bool = True
    """Fail closed when no method gives an answer for some certificate of the path."""
    use_deltas: bool = True
    ocsp_nonce: bytes | None = None
    """When set, an OCSP response must echo exactly this nonce."""
    ocsp_max_age: dt.timedelta = dt.timedelta(days=1)
    """For responses without nextUpdate: how old thisUpdate may be."""
    clock_skew: dt.timedelta = dt.timedelta(minutes=5)
    initial_policy_set: frozenset[str] = frozenset({ANY_POLICY})
    """RFC 5280 §6.1.1 (c) user-initial-policy-set, as dotted OIDs."""
    initial_explicit_policy: bool = False
    initial_policy_mapping_inhibit: bool = False
    initial_any_policy_inhibit: bool = False

    @property
    def policy_inputs(self) -> PolicyInputs:
        return PolicyInputs(self.initial_policy_set, self.initial_explicit_policy,
                            self.initial_policy_mapping_inhibit, self.initial_any_policy_inhibit)


Fetcher = Callable[[str, bytes | None], bytes]
"""``fetch(url, body)``: GET when body is None, else POST an OCSP request; returns the body."""

_SUPPORTED_CERT_EXTENSIONS = {
    ExtensionOID.BASIC_CONSTRAINTS, ExtensionOID.KEY_USAGE, ExtensionOID.EXTENDED_KEY_USAGE,
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME, ExtensionOID.ISSUER_ALTERNATIVE_NAME,
    ExtensionOID.SUBJECT_KEY_IDENTIFIER, ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    ExtensionOID.CRL_DISTRIBUTION_POINTS, ExtensionOID.FRESHEST_CRL,
    ExtensionOID.AUTHORITY_INFORMATION_ACCESS, ExtensionOID.OCSP_NO_CHECK,
    ExtensionOID.CERTIFICATE_POLICIES, ExtensionOID.POLICY_MAPPINGS,
    ExtensionOID.POLICY_CONSTRAINTS, ExtensionOID.INHIBIT_ANY_POLICY,
    ExtensionOID.NAME_CONSTRAINTS,
}
_SUPPORTED_CRL_EXTENSIONS = {
    ExtensionOID.CRL_NUMBER, ExtensionOID.DELTA_CRL_INDICATOR,
    ExtensionOID.ISSUING_DISTRIBUTION_POINT, ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    ExtensionOID.ISSUER_ALTERNATIVE_NAME, ExtensionOID.FRESHEST_CRL,
    ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
}
ALL_REASONS = frozenset({
    x509.ReasonFlags.key_compromise, x509.ReasonFlags.ca_compromise,
    x509.ReasonFlags.affiliation_changed, x509.ReasonFlags.superseded,
    x509.ReasonFlags.cessation_of_operation, x509.ReasonFlags.certificate_hold,
    x509.ReasonFlags.privilege_withdrawn, x509.ReasonFlags.aa_compromise})


# --- small helpers --------------------------------------------------------------------------

def _fingerprint(cert: x509.Certificate) -> bytes:
    return cert.fingerprint(hashes.SHA256())


def _extension(obj: object, cls: type) -> object | None:
    try:
        return obj.extensions.get_extension_for_class(cls).value  # type: ignore[attr-defined]
    except x509.ExtensionNotFound:
        return None


def _is_ca(cert: x509.Certificate) -> bool:
    bc = _extension(cert, x509.BasicConstraints)
    return bool(bc and bc.ca)


def _self_issued(cert: x509.Certificate) -> bool:
    return names_match(cert.subject, cert.issuer)


def _signed_by(cert: x509.Certificate, public_key: object) -> bool:
    try:
        return verify_signature(public_key, cert.signature, cert.tbs_certificate_bytes,
                                cert.signature_hash_algorithm, cert.signature_algorithm_parameters)
    except (UnsupportedAlgorithm, ValueError):
        return False


def _key_id(public_key: object) -> bytes | None:
    try:
        return x509.SubjectKeyIdentifier.from_public_key(public_key).digest  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _spki(public_key: object) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER,  # type: ignore[attr-defined]
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


# --- revocation status ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Status:
    """good, revoked, or undetermined with the verdict and detail that explain why."""

    state: str
    reason: x509.ReasonFlags | None = None
    revocation_date: dt.datetime | None = None
    invalidity_date: dt.datetime | None = None
    verdict: Verdict | None = None
    detail: str = ""


_GOOD = _Status("good")

# The most telling explanation wins when several CRLs or responses were unusable.
_PROBLEM_RANK = {Verdict.STALE_REVOCATION_INFO: 4, Verdict.BAD_CRL_SIGNATURE: 3,
                 Verdict.UNKNOWN_CRITICAL_EXTENSION: 2, Verdict.NO_REVOCATION_INFO: 1}


def _undetermined(problems: list[tuple[Verdict, str]], default: str) -> _Status:
    if not problems:
        return _Status("undetermined", verdict=Verdict.NO_REVOCATION_INFO, detail=default)
    verdict, detail = max(problems, key=lambda p: _PROBLEM_RANK.get(p[0], 0))
    return _Status("undetermined", verdict=verdict, detail=detail)


@dataclass
class _CRL:
    index: CRLIndex
    label: str
    _signers: dict[bytes, bool] = field(default_factory=dict)

    @property
    def header(self) -> x509.CertificateRevocationList:
        return self.index.header

    def signed_by(self, public_key: object) -> bool:
        spki = _spki(public_key)
        if spki not in self._signers:
            self._signers[spki] = self.index.verify_signature(public_key)
        return self._signers[spki]

    @property
    def is_delta(self) -> bool:
        return _extension(self.header, x509.DeltaCRLIndicator) is not None

    @property
    def number(self) -> int | None:
        ext = _extension(self.header, x509.CRLNumber)
        return ext.crl_number if ext else None

    def unknown_critical(self) -> str | None:
        for ext in self.header.extensions:
            if ext.critical and ext.oid not in _SUPPORTED_CRL_EXTENSIONS:
                return f"{self.label} has an unknown critical extension {ext.oid.dotted_string}"
        if self.index.has_unknown_critical_entry_extension:
            return f"{self.label} has an entry with an unknown critical extension"
        return None


def _dp_names(dpname_full: Sequence[x509.GeneralName] | None,
              relative: x509.RelativeDistinguishedName | None,
              base: x509.Name) -> list[object]:
    """Distribution-point names as comparable keys; a relative name hangs under ``base``."""
    if dpname_full:
        return [name_key(n.value) if isinstance(n, x509.DirectoryName) else (type(n), n.value)
                for n in dpname_full]
    if relative is not None:
        return [name_key(x509.Name([*base.rdns, relative]))]
    return []


@dataclass(frozen=True, slots=True)
class _AbsentDistributionPoint:
    full_name: None = None
    relative_name: None = None
    reasons: None = None
    crl_issuer: None = None


_NO_DP = _AbsentDistributionPoint()


class Validator:
    """Validates end-entity certificates against trust anchors, CRLs and OCSP responses.

    ``clock`` supplies "now" when ``validate`` is not given a time; tests inject a fixed one.
    """

    def __init__(
        self,
        trust_anchors: Iterable[x509.Certificate],
        intermediates: Iterable[x509.Certificate] = (),
        crls: Iterable[bytes | x509.CertificateRevocationList] = (),
        ocsp_responses: Iterable[bytes] = (),
        *,
        policy: Policy | None = None,
        clock: Clock = system_clock,
        fetcher: Fetcher | None = None,
    ) -> None:
        self.anchors = list(trust_anchors)
        self._anchor_prints = {_fingerprint(a) for a in self.anchors}
        self.intermediates = list(intermediates)
        self.policy = policy or Policy()
        self.clock = clock
        self.fetcher = fetcher
        self._crls: list[_CRL] = []
        self._crl_ders: set[bytes] = set()
        self._crl_problems: list[tuple[Verdict, str]] = []
        for n, crl in enumerate(crls):
            self.add_crl(crl, f"CRL #{n + 1}")
        self._ocsp: list[bytes] = list(ocsp_responses)
        self._fetched: set[str] = set()

    def add_crl(self, crl: bytes | x509.CertificateRevocationList, label: str = "CRL") -> None:
        der = crl if isinstance(crl, bytes) else crl.public_bytes(serialization.Encoding.DER)
        if der in self._crl_ders:
            return
        self._crl_ders.add(der)
        try:
            self._crls.append(_CRL(CRLIndex.load(der), label))
        except CRLFormatError as exc:
            self._crl_problems.append((Verdict.NO_REVOCATION_INFO, f"{label}: {exc}"))

    def add_crl_index(self, index: CRLIndex, label: str = "CRL") -> None:
        """Add a CRL already indexed (a caller's cache), so it is not parsed again."""
        if index.der in self._crl_ders:
            return
        self._crl_ders.add(index.der)
        self._crls.append(_CRL(index, label))

    # --- entry point ------------------------------------------------------------------------

    def validate(self, cert: x509.Certificate | bytes,
                 at: dt.datetime | None = None) -> ValidationResult:
        when = at or self.clock()
        try:
            if isinstance(cert, bytes):
                cert = x509.load_der_x509_certificate(cert)
                cert.extensions  # noqa: B018 - parse now: a bad extension is a bad certificate
            return self._validate(cert, when, depth=0, visiting=frozenset())
        except ValueError as exc:
            return ValidationResult(Verdict.MALFORMED, f"cannot parse the input: {exc}")
        except Exception as exc:  # noqa: BLE001 - fail closed on anything unforeseen
            return ValidationResult(Verdict.MALFORMED,
                                    f"validation aborted: {type(exc).__name__}: {exc}")

    def _validate(self, cert: x509.Certificate, when: dt.datetime, depth: int,
                  visiting: frozenset[bytes]) -> ValidationResult:
        failures: list[ValidationResult] = []
        for path in self._paths(cert, visiting):
            result = self._check_path(path, when, depth, visiting)
            if result.is_valid:
                return result
            failures.append(result)
            if len(failures) >= MAX_PATHS:
                break
        if not failures:
            return ValidationResult(Verdict.UNTRUSTED_CHAIN,
                                    "no chain of valid signatures to a trust anchor")
        # Issuers whose key identifier matches the AKI were tried first: that path's failure
        # is the one the certificate's issuer intended.
        return failures[0]

    # --- path building ----------------------------------------------------------------------

    def _issuers(self, cert: x509.Certificate) -> list[tuple[x509.Certificate, bool]]:
        """(issuer, is_anchor) candidates that match by name and verify the signature,
        those whose key identifier matches the AKI first."""
        aki = _extension(cert, x509.AuthorityKeyIdentifier)
        wanted = aki.key_identifier if aki else None
        found = []
        for candidate, is_anchor in ([(a, True) for a in self.anchors]
                                     + [(c, False) for c in self.intermediates]):
            if not names_match(candidate.subject, cert.issuer):
                continue
            try:
                public_key = candidate.public_key()
            except (ValueError, UnsupportedAlgorithm):
                continue
            if _signed_by(cert, public_key):
                found.append((candidate, is_anchor))
        found.sort(key=lambda c: (not c[1], _key_id(c[0].public_key()) != wanted))
        return found

    def _paths(self, cert: x509.Certificate,
               visiting: frozenset[bytes]) -> Iterator[tuple[x509.Certificate, ...]]:
        """Paths anchor-first, ending with ``cert``."""
        yielded = 0

        def extend(chain: list[x509.Certificate], seen: set[bytes]):
            nonlocal yielded
            if yielded >= MAX_PATHS or len(chain) > MAX_PATH_DEPTH:
                return
            for issuer, is_anchor in self._issuers(chain[-1]):
                fp = _fingerprint(issuer)
                if is_anchor:
                    yielded += 1
                    yield (issuer, *reversed(chain))
                elif fp not in seen:
                    yield from extend([*chain, issuer], seen | {fp})

        if _fingerprint(cert) in self._anchor_prints:
            yield (cert,)
            return
        yield from extend([cert], {_fingerprint(cert)})

    # --- path checks (RFC 5280 §6.1) --------------------------------------------------------

    def _check_path(self, path: tuple[x509.Certificate, ...], when: dt.datetime, depth: int,
                    visiting: frozenset[bytes]) -> ValidationResult:
        chain = path[1:]
        max_path_length = len(chain)
        for i, cert in enumerate(chain):
            last = i == len(chain) - 1
            if when < cert.not_valid_before_utc:
                return ValidationResult(
                    Verdict.NOT_YET_VALID, f"{cert.subject.rfc4514_string()} is not valid before "
                    f"{cert.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ}", path=path)
            if when > cert.not_valid_after_utc:
                return ValidationResult(Verdict.EXPIRED,
                                        f"{cert.subject.rfc4514_string()} expired "
                                        f"{cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}", path=path)
            for ext in cert.extensions:
                if ext.critical and ext.oid not in _SUPPORTED_CERT_EXTENSIONS:
                    return ValidationResult(
                        Verdict.UNKNOWN_CRITICAL_EXTENSION,
                        f"{cert.subject.rfc4514_string()} has a critical extension this "
                        f"validator does not process ({ext.oid.dotted_string})", path=path)
            if last:
                break
            bc = _extension(cert, x509.BasicConstraints)
            if not (bc and bc.ca):
                return ValidationResult(Verdict.INVALID_PATH,
                                        f"{cert.subject.rfc4514_string()} is not a CA "
                                        "(basicConstraints)", path=path)
            if not _self_issued(cert):
                if max_path_length <= 0:
                    return ValidationResult(Verdict.INVALID_PATH,
                                            "pathLenConstraint exceeded", path=path)
                max_path_length -= 1
            if bc.path_length is not None:
                max_path_length = min(max_path_length, bc.path_length)
            ku = _extension(cert, x509.KeyUsage)
            if ku is not None and not ku.key_cert_sign:
                return ValidationResult(Verdict.INVALID_PATH,
                                        f"{cert.subject.rfc4514_string()} may not sign "
                                        "certificates (keyUsage)", path=path)
        try:
            check_name_constraints(chain)
            check_policies(chain, self.policy.policy_inputs)
        except (NameConstraintError, PolicyError) as exc:
            return ValidationResult(Verdict.INVALID_PATH, str(exc), path=path)
        path_fps = frozenset(_fingerprint(c) for c in path)
        visiting = visiting | path_fps
        for i, cert in enumerate(chain):
            status = self._status(cert, path[i], when, depth, visiting, path_fps)
            if status.state == "good":
                continue
            if status.state == "revoked":
                hold = status.reason is x509.ReasonFlags.certificate_hold
                what = "on hold" if hold else "revoked"
                return ValidationResult(
                    Verdict.ON_HOLD if hold else Verdict.REVOKED,
                    f"{cert.subject.rfc4514_string()} (serial {cert.serial_number:#x}) is "
                    f"{what}", status.reason, status.revocation_date, status.invalidity_date,
                    path)
            if self.policy.require_revocation_info:
                return ValidationResult(status.verdict or Verdict.NO_REVOCATION_INFO,
                                        f"{cert.subject.rfc4514_string()}: {status.detail}",
                                        path=path, in_revocation_info=True)
        return ValidationResult(Verdict.VALID, "valid", path=path)

    def _status(self, cert: x509.Certificate, issuer: x509.Certificate, when: dt.datetime,
                depth: int, visiting: frozenset[bytes], path_fps: frozenset[bytes]) -> _Status:
        problems: list[tuple[Verdict, str]] = []
        for method in self.policy.methods:
            if method is RevocationMethod.OCSP:
                status = self._ocsp_status(cert, issuer, when)
            else:
                status = self._crl_status(cert, issuer, when, depth, visiting, path_fps)
            if status.state != "undetermined":
                return status
            problems.append((status.verdict or Verdict.NO_REVOCATION_INFO, status.detail))
        return _undetermined(problems, "no revocation information")

    # --- CRLs (RFC 5280 §6.3) ---------------------------------------------------------------

    def _fetch_crls(self, cert: x509.Certificate) -> None:
        if self.fetcher is None:
            return
        for cls in (x509.CRLDistributionPoints, x509.FreshestCRL):
            ext = _extension(cert, cls)
            for dp in ext or ():
                for name in dp.full_name or ():
                    url = name.value
                    if (isinstance(name, x509.UniformResourceIdentifier)
                            and url.startswith("http://") and url not in self._fetched):
                        self._fetched.add(url)
                        try:
                            self.add_crl(self.fetcher(url, None), url)
                        except OSError as exc:
                            self._crl_problems.append(
                                (Verdict.NO_REVOCATION_INFO, f"cannot fetch {url}: {exc}"))

    def _crl_status(self, cert: x509.Certificate, issuer: x509.Certificate, when: dt.datetime,
                    depth: int, visiting: frozenset[bytes],
                    path_fps: frozenset[bytes]) -> _Status:
        self._fetch_crls(cert)
        cdp = _extension(cert, x509.CRLDistributionPoints)
        # Without the extension the CRL must come from the certificate's issuer, for all
        # reasons (RFC 5280 §6.3.3): a distribution point with every field absent.
        dps = list(cdp) if cdp else [_NO_DP]
        reasons_mask: set[x509.ReasonFlags] = set()
        problems = list(self._crl_problems)
        considered = False
        for dp in dps:
            for crl in self._crls:
                if reasons_mask >= ALL_REASONS:
                    break
                if crl.is_delta:
                    continue
                outcome = self._apply_crl(cert, issuer, dp, crl, reasons_mask, when, depth,
                                          visiting, path_fps, problems)
                if outcome is None:
                    continue
                considered = True
                if outcome.state == "revoked":
                    return outcome
        if reasons_mask >= ALL_REASONS:
            return _GOOD
        if considered and reasons_mask:
            problems.append((Verdict.NO_REVOCATION_INFO,
                             "the applicable CRLs do not cover every revocation reason"))
        return _undetermined(problems, "no CRL applies to this certificate")

    def _crl_scope_matches(self, cert: x509.Certificate, dp: x509.DistributionPoint,
                           crl: _CRL) -> bool:
        header = crl.header
        idp = _extension(header, x509.IssuingDistributionPoint)
        if dp.crl_issuer:
            if not (idp and idp.indirect_crl):
                return False
            if not any(isinstance(n, x509.DirectoryName) and names_match(n.value, header.issuer)
                       for n in dp.crl_issuer):
                return False
        elif not names_match(header.issuer, cert.issuer):
            return False
        if idp is None:
            return True
        idp_names = _dp_names(idp.full_name, idp.relative_name, header.issuer)
        if idp_names:
            dp_base = cert.issuer
            if dp.crl_issuer:
                dirs = [n.value for n in dp.crl_issuer if isinstance(n, x509.DirectoryName)]
                dp_base = dirs[0] if dirs else cert.issuer
            dp_names = _dp_names(dp.full_name, dp.relative_name, dp_base)
            if not dp_names and dp.crl_issuer:
                dp_names = _dp_names(dp.crl_issuer, None, dp_base)
            if not any(n in idp_names for n in dp_names):
                return False
        is_ca = _is_ca(cert)
        if idp.only_contains_user_certs and is_ca:
            return False
        if idp.only_contains_ca_certs and not is_ca:
            return False
        return not idp.only_contains_attribute_certs

    def _crl_signer(self, crl: _CRL, cert_issuer: x509.Certificate, direct: bool,
                    when: dt.datetime, depth: int, visiting: frozenset[bytes],
                    path_fps: frozenset[bytes],
                    problems: list[tuple[Verdict, str]]) -> x509.Certificate | None:
        """The certificate whose key signed the CRL, validated (RFC 5280 §6.3.3 (f)) up to the
        trust anchor of the certificate's own path: another generation of the same CA is
        another trust anchor, and its signature on this generation's CRL does not count."""
        candidates = [cert_issuer] if direct else []
        candidates += [c for c in [*self.anchors, *self.intermediates]
                       if names_match(c.subject, crl.header.issuer) and c is not cert_issuer]
        verified = False  # some key of the issuer's name verified the signature
        for candidate in candidates:
            if not names_match(candidate.subject, crl.header.issuer):
                continue
            if not crl.signed_by(candidate.public_key()):
                continue
            verified = True
            ku = _extension(candidate, x509.KeyUsage)
            if ku is not None and not ku.crl_sign:
                problems.append((Verdict.NO_REVOCATION_INFO,
                                 f"{crl.label} is signed by a key without cRLSign"))
                continue
            fp = _fingerprint(candidate)
            # A certificate of this path has had its structure checked, and its revocation is
            # checked on the way down.
            if candidate is cert_issuer or fp in path_fps:
                return candidate
            if fp in visiting or depth >= MAX_SIGNER_DEPTH:
                continue
            result = self._validate(candidate, when, depth + 1, visiting)
            if result.is_valid and _fingerprint(result.path[0]) in path_fps:
                return candidate
            problems.append((Verdict.NO_REVOCATION_INFO, f"the signer of {crl.label} is not "
                             "valid under this path's trust anchor: " + (
                                 result.detail if not result.is_valid
                                 else "it belongs to another trust anchor (CA generation)")))
        if candidates and not verified:
            problems.append((Verdict.BAD_CRL_SIGNATURE,
                             f"{crl.label}: signature does not verify with any key of its issuer"))
        return None

    def _fresh(self, crl: _CRL, when: dt.datetime) -> tuple[Verdict, str] | None:
        header = crl.header
        skew = self.policy.clock_skew
        if header.last_update_utc > when + skew:
            return (Verdict.NO_REVOCATION_INFO, f"{crl.label} was issued after the validation "
                    "time")
        if header.next_update_utc is None:
            return (Verdict.STALE_REVOCATION_INFO,
                    f"{crl.label} has no nextUpdate, so its freshness cannot be established")
        if header.next_update_utc < when:
            return (Verdict.STALE_REVOCATION_INFO,
                    f"{crl.label} is stale: nextUpdate {header.next_update_utc:%Y-%m-%dT%H:%M:%SZ}")
        return None

    def _delta_for(self, base: _CRL, signer: x509.Certificate, when: dt.datetime,
                   problems: list[tuple[Verdict, str]]) -> tuple[_CRL | None, int | None]:
        """The newest usable delta on ``base``, and the base number of a delta that needs a
        newer complete CRL than ``base`` (if any)."""
        base_number = base.number
        if base_number is None:
            return None, None
        base_idp = _extension(base.header, x509.IssuingDistributionPoint)
        best = None
        newer_base = None
        for crl in self._crls:
            indicator = _extension(crl.header, x509.DeltaCRLIndicator)
            if indicator is None or not names_match(crl.header.issuer, base.header.issuer):
                continue
            if _extension(crl.header, x509.IssuingDistributionPoint) != base_idp:
                continue
            number = crl.number
            if indicator.crl_number > base_number:
                newer_base = indicator.crl_number
                continue
            if number is None or number <= base_number:
                continue
            problem = crl.unknown_critical() or None
            if problem:
                problems.append((Verdict.UNKNOWN_CRITICAL_EXTENSION, problem))
                continue
            if not crl.signed_by(signer.public_key()):
                problems.append((Verdict.BAD_CRL_SIGNATURE,
                                 f"{crl.label}: delta CRL signature does not verify"))
                continue
            stale = self._fresh(crl, when)
            if stale:
                problems.append(stale)
                continue
            if best is None or number > (best.number or 0):
                best = crl
        return best, newer_base

    def _apply_crl(self, cert: x509.Certificate, issuer: x509.Certificate,
                   dp: x509.DistributionPoint, crl: _CRL, reasons_mask: set[x509.ReasonFlags],
                   when: dt.datetime, depth: int, visiting: frozenset[bytes],
                   path_fps: frozenset[bytes],
                   problems: list[tuple[Verdict, str]]) -> _Status | None:
        """Apply one complete CRL for one distribution point; None when it does not apply."""
        if not self._crl_scope_matches(cert, dp, crl):
            return None
        idp = _extension(crl.header, x509.IssuingDistributionPoint)
        interim = set(ALL_REASONS)
        if idp is not None and idp.only_some_reasons:
            interim &= set(idp.only_some_reasons)
        if dp.reasons:
            interim &= set(dp.reasons)
        if interim <= reasons_mask:
            return None
        problem = crl.unknown_critical()
        if problem:
            problems.append((Verdict.UNKNOWN_CRITICAL_EXTENSION, problem))
            return None
        signer = self._crl_signer(crl, issuer, not dp.crl_issuer, when, depth, visiting,
                                  path_fps, problems)
        if signer is None:
            return None
        delta, newer_base = (self._delta_for(crl, signer, when, problems)
                             if self.policy.use_deltas else (None, None))
        stale = self._fresh(crl, when)
        if stale and delta is None:
            if newer_base is not None:
                # Not merely old: the issuer has published a complete CRL we do not have.
                problems.append((Verdict.NO_REVOCATION_INFO,
                                 f"{crl.label} is superseded: a delta CRL needs base CRL "
                                 f"{newer_base}, which is missing"))
                problems[:] = [p for p in problems if p[0] is not Verdict.STALE_REVOCATION_INFO]
            else:
                problems.append(stale)
            return None
        if delta is not None:
            entry = self._entry(delta, cert, crl.header.issuer)
            if entry is not None:
                if entry.reason is x509.ReasonFlags.remove_from_crl:
                    reasons_mask |= interim
                    return _GOOD
                return _Status("revoked", entry.reason or x509.ReasonFlags.unspecified,
                               entry.revocation_date, entry.invalidity_date)
        entry = self._entry(crl, cert, crl.header.issuer)
        if entry is not None and entry.reason is not x509.ReasonFlags.remove_from_crl:
            return _Status("revoked", entry.reason or x509.ReasonFlags.unspecified,
                           entry.revocation_date, entry.invalidity_date)
        reasons_mask |= interim
        return _GOOD

    @staticmethod
    def _entry(crl: _CRL, cert: x509.Certificate, crl_issuer: x509.Name) -> RevokedEntry | None:
        if not crl.index.is_indirect:
            if not names_match(crl_issuer, cert.issuer):
                return None
            return crl.index.lookup(cert.serial_number)
        # Indirect CRL: entries belong to the issuer named by the latest certificateIssuer
        # entry extension (RFC 5280 §5.3.3); small lists only, so cryptography walks them.
        current = crl_issuer
        full = x509.load_der_x509_crl(crl.index.der)
        for revoked in full:
            names = _extension(revoked, x509.CertificateIssuer)
            if names is not None:
                dirs = [n for n in names if isinstance(n, x509.DirectoryName)]
                current = dirs[0].value if dirs else current
            if revoked.serial_number == cert.serial_number and names_match(current, cert.issuer):
                reason = _extension(revoked, x509.CRLReason)
                invalidity = _extension(revoked, x509.InvalidityDate)
                return RevokedEntry(revoked.serial_number, revoked.revocation_date_utc,
                                    reason.reason if reason else None,
                                    invalidity.invalidity_date_utc if invalidity else None)
        return None

    # --- OCSP (RFC 6960) --------------------------------------------------------------------

    def _ocsp_status(self, cert: x509.Certificate, issuer: x509.Certificate,
                     when: dt.datetime) -> _Status:
        responses = list(self._ocsp)
        aia = _extension(cert, x509.AuthorityInformationAccess)
        if self.fetcher is not None and aia is not None:
            for desc in aia:
                url = desc.access_location.value
                if desc.access_method == x509.AuthorityInformationAccessOID.OCSP and \
                        url.startswith("http://"):
                    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer,
                                                                        hashes.SHA256())
                    if self.policy.ocsp_nonce is not None:
                        builder = builder.add_extension(x509.OCSPNonce(self.policy.ocsp_nonce),
                                                        critical=False)
                    try:
                        responses.append(self.fetcher(url, builder.build().public_bytes(
                            serialization.Encoding.DER)))
                    except OSError:
                        continue
        problems: list[tuple[Verdict, str]] = []
        for der in responses:
            status = self._check_ocsp_response(der, cert, issuer, when)
            if status is None:
                continue
            if status.state != "undetermined":
                return status
            problems.append((status.verdict or Verdict.NO_REVOCATION_INFO, status.detail))
        return _undetermined(problems, "no OCSP response for this certificate")

    def _check_ocsp_response(self, der: bytes, cert: x509.Certificate,
                             issuer: x509.Certificate, when: dt.datetime) -> _Status | None:
        def fail(verdict: Verdict, detail: str) -> _Status:
            return _Status("undetermined", verdict=verdict, detail=f"OCSP: {detail}")

        try:
            response = ocsp.load_der_ocsp_response(der)
        except ValueError as exc:
            return fail(Verdict.NO_REVOCATION_INFO, f"malformed response ({exc})")
        if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
            return fail(Verdict.NO_REVOCATION_INFO,
                        f"responder answered {response.response_status.name}")
        try:
            single = None
            for candidate in response.responses:
                if candidate.serial_number == cert.serial_number and \
                        self._cert_id_matches(candidate, issuer):
                    single = candidate
            if single is None:
                return None
            signer = self._ocsp_signer(response, issuer, when)
            if isinstance(signer, str):
                return fail(Verdict.NO_REVOCATION_INFO, signer)
            nonce = _extension(response, x509.OCSPNonce)
            expected = self.policy.ocsp_nonce
            if expected is not None and (nonce is None or nonce.nonce != expected):
                return fail(Verdict.NO_REVOCATION_INFO, "nonce missing or different from ours")
            skew = self.policy.clock_skew
            if single.this_update_utc > when + skew:
                return fail(Verdict.NO_REVOCATION_INFO, "response is from the future")
            next_update = single.next_update_utc
            if next_update is None:
                if when - single.this_update_utc > self.policy.ocsp_max_age:
                    return fail(Verdict.STALE_REVOCATION_INFO, "response too old")
            elif next_update < when:
                return fail(Verdict.STALE_REVOCATION_INFO,
                            f"response is stale: nextUpdate {next_update:%Y-%m-%dT%H:%M:%SZ}")
            if single.certificate_status is ocsp.OCSPCertStatus.GOOD:
                return _GOOD
            if single.certificate_status is ocsp.OCSPCertStatus.REVOKED:
                return _Status("revoked", single.revocation_reason or
                               x509.ReasonFlags.unspecified, single.revocation_time_utc)
            return fail(Verdict.NO_REVOCATION_INFO, "responder does not know the certificate")
        except ValueError as exc:
            return fail(Verdict.NO_REVOCATION_INFO, f"malformed response ({exc})")

    @staticmethod
    def _cert_id_matches(single: ocsp.OCSPSingleResponse, issuer: x509.Certificate) -> bool:
        algorithm = single.hash_algorithm
        return (single.issuer_name_hash == name_hash(issuer, algorithm)
                and single.issuer_key_hash == key_hash(issuer, algorithm))

    def _ocsp_signer(self, response: ocsp.OCSPResponse, issuer: x509.Certificate,
                     when: dt.datetime) -> x509.Certificate | str:
        """The CA itself or a delegated responder it certified (RFC 6960 §4.2.2.2)."""
        def signed_by(cert: x509.Certificate) -> bool:
            try:
                return verify_signature(cert.public_key(), response.signature,
                                        response.tbs_response_bytes,
                                        response.signature_hash_algorithm, None)
            except (UnsupportedAlgorithm, ValueError):
                return False

        if signed_by(issuer):
            return issuer
        for responder in response.certificates:
            if not signed_by(responder):
                continue
            if not names_match(responder.issuer, issuer.subject) or \
                    not _signed_by(responder, issuer.public_key()):
                return "responder certificate not issued by the certificate's CA (unauthorised)"
            eku = _extension(responder, x509.ExtendedKeyUsage)
            if eku is None or ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
                return "responder certificate lacks id-kp-OCSPSigning (unauthorised)"
            if not responder.not_valid_before_utc <= when <= responder.not_valid_after_utc:
                return "responder certificate is outside its validity period"
            if _extension(responder, x509.OCSPNoCheck) is None:
                return "responder certificate has no id-pkix-ocsp-nocheck"
            return responder
        return "response not signed by the CA or a responder it authorised (unauthorised)"
