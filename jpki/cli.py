"""``mynacard pki …`` and ``mynacard vectors …`` (registered on the main CLI group)."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

import click
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from ..cardsim.storage import CardImageError
from ..facts.person import Resident
from . import lifecycle
from .ca import DEFAULT_BASE_URL, CardCertificates, IssuanceError, SimulatorPKI, new_rsa_key
from .profile import CA_KINDS
from .store import Role, StoreError


def _parse_time(text: str | None) -> dt.datetime:
    if text is None:
        return dt.datetime.now(dt.UTC)
    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


class _Time(click.ParamType):
    name = "TIME"

    def convert(self, value, param, ctx):  # noqa: ANN001 - click's signature
        if isinstance(value, dt.datetime):
            return value
        try:
            return _parse_time(value)
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 time", param, ctx)


TIME = _Time()
def default_store() -> str:
    """The same default as ``mynacard card issue --pki``."""
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return os.environ.get("MYNACARD_PKI") or str(data_home / "mynacard" / "pki")


store_option = click.option(
    "--store", "--pki", "store_path", type=click.Path(path_type=Path), default=default_store,
    show_default="$MYNACARD_PKI or ~/.local/share/mynacard/pki",
    help="PKI store: a directory (pki.sqlite3 inside) or a .sqlite3 file.")
now_option = click.option("--now", type=TIME, default=None,
                          help="The event's time (ISO 8601; default: the clock).")


def _open(store_path: Path, now: dt.datetime | None = None) -> SimulatorPKI:
    try:
        return SimulatorPKI.open(store_path, now=now)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc


def _card_key():
    """The card generates its key pairs on chip; without a card image, stand in for it."""
    return new_rsa_key().public_key()


def _print_certificates(certs: CardCertificates | None, out: Path | None) -> None:
    if certs is None:
        return
    for role, cert in (("auth", certs.auth), ("sign", certs.sign)):
        if cert is None:
            continue
        click.echo(f"{role}: serial {cert.serial_number:#x} valid until "
                   f"{cert.not_valid_after_utc:%Y-%m-%d}")
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            (out / f"{certs.card_id}-{role}.pem").write_bytes(
                cert.public_bytes(serialization.Encoding.PEM))


def _report(result: lifecycle.EventResult, out: Path | None = None) -> None:
    for record in result.changed:
        reason = record.reason.value if record.reason else "-"
        click.echo(f"{record.role.value}: serial {record.serial:#x} -> {record.status.value} "
                   f"({reason})")
    _print_certificates(result.certificates, out)


def _lifecycle_errors(func):
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (StoreError, IssuanceError, CardImageError) as exc:
            raise click.ClickException(str(exc)) from exc

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


@click.group()
def pki() -> None:
    """The simulator's JPKI: CAs, card certificates, revocation, validation."""


@pki.command()
@store_option
@click.option("--base-url", default=DEFAULT_BASE_URL, show_default=True,
              help="Where CRLs and OCSP will be served (written into certificates).")
@now_option
def init(store_path: Path, base_url: str, now: dt.datetime | None) -> None:
    """Create the store with the first generation of both CAs."""
    pki_ = SimulatorPKI.open(store_path, now=now, base_url=base_url)
    for kind in CA_KINDS.values():
        for ca in pki_.generations(kind):
            fingerprint = ca.certificate.fingerprint(hashes.SHA256()).hex()
            click.echo(f"{kind.key} CA generation {ca.generation}: SHA-256 {fingerprint}")


@pki.command()
@store_option
@click.option("--resident", "resident_file", type=click.Path(exists=True, path_type=Path),
              required=True, help="JSON resident record (the fields of facts.person.Resident).")
@click.option("--card-id", default=None)
@click.option("--card-expiry", type=click.DateTime(["%Y-%m-%d"]), required=True)
@click.option("--no-sign", is_flag=True, help="No signing certificate (under-15s).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Write the certificates here as PEM.")
@now_option
@_lifecycle_errors
def issue(store_path: Path, resident_file: Path, card_id: str | None, card_expiry: dt.datetime,
          no_sign: bool, out: Path | None, now: dt.datetime | None) -> None:
    """Issue a card's certificates."""
    pki_ = _open(store_path)
    resident = Resident.from_json(resident_file.read_text(encoding="utf-8"))
    certs = lifecycle.issue_card(pki_, resident, _card_key(), None if no_sign else _card_key(),
                                         now or _parse_time(None), card_expiry.date(),
                                         card_id=card_id)
    click.echo(f"card {certs.card_id}")
    _print_certificates(certs, out)


def _card(card: str) -> tuple[str, Path | None]:
    """CARD is a card id in the store, or a card image directory (its id is in the image)."""
    path = Path(card)
    if (path / "card.json").is_file():
        from ..cardsim.perso.reissue import card_id

        return card_id(path), path
    return card, None


def _event_command(name: str, help_text: str, needs_resident: bool = False):
    def decorator(func):
        func = _lifecycle_errors(func)
        func = now_option(func)
        func = click.option("--out", type=click.Path(path_type=Path), default=None,
                            help="Write new certificates here as PEM.")(func)
        if needs_resident:
            func = click.option("--resident", "resident_file", required=True,
                                type=click.Path(exists=True, path_type=Path))(func)
        func = click.argument("card")(func)
        func = store_option(func)
        return pki.command(name, help=help_text + " CARD is a card id or a card image "
                           "directory; for an image, new keys and certificates are written "
                           "into it.")(func)
    return decorator


def _has_sign(pki_: SimulatorPKI, card_id: str) -> bool:
    return any(r.role is Role.SIGN for r in lifecycle.live_certificates(pki_, card_id))


@_event_command("renew", "Renew both certificates (old ones revoked: superseded).")
def renew_cmd(store_path, card, out, now):
    pki_, (card_id, image) = _open(store_path), _card(card)
    when = now or _parse_time(None)
    if image is not None:
        from ..cardsim.perso import reissue as cardimage

        _report(cardimage.renew(pki_, image, when), out)
        return
    _report(lifecycle.renew(pki_, card_id, _card_key(),
                            _card_key() if _has_sign(pki_, card_id) else None, when), out)


@_event_command("change-address", "Change of address or name: new signing certificate, old "
                "one revoked (affiliationChanged); authentication untouched.",
                needs_resident=True)
def change_address_cmd(store_path, card, resident_file, out, now):
    pki_, (card_id, image) = _open(store_path), _card(card)
    resident = Resident.from_json(resident_file.read_text(encoding="utf-8"))
    when = now or _parse_time(None)
    if image is not None:
        from ..cardsim.perso import reissue as cardimage

        _report(cardimage.change_resident(pki_, image, resident, when), out)
        return
    _report(lifecycle.change_resident(pki_, card_id, resident,
                                      _card_key() if _has_sign(pki_, card_id) else None, when),
            out)


@_event_command("reissue", "Reissue a card's certificates after loss.")
def reissue_cmd(store_path, card, out, now):
    pki_, (card_id, image) = _open(store_path), _card(card)
    when = now or _parse_time(None)
    if image is not None:
        from ..cardsim.perso import reissue as cardimage

        _report(cardimage.reissue(pki_, image, when), out)
        return
    had_sign = any(r.role is Role.SIGN for r in pki_.store.card_certificates(card_id))
    _report(lifecycle.reissue(pki_, card_id, _card_key(), _card_key() if had_sign else None,
                              when), out)


def _simple_event(name: str, help_text: str, event) -> None:
    @_event_command(name, help_text)
    def command(store_path, card, out, now):
        _report(event(_open(store_path), _card(card)[0], now or _parse_time(None)), out)


_simple_event("loss", "Report a lost card: both certificates on hold.", lifecycle.report_loss)
_simple_event("found", "A lost card was found: held certificates revoked, never released.",
              lifecycle.card_found)
_simple_event("death", "The holder died: every certificate revoked.", lifecycle.death)
_simple_event("revoke", "Revocation at the holder's request (both certificates).",
              lifecycle.user_request)
_simple_event("compromise", "Key compromise: both certificates revoked (keyCompromise).",
              lifecycle.key_compromise)
_simple_event("release-hold", "Lift the hold of a smartphone authentication certificate.",
              lifecycle.release_hold)


@pki.command()
@store_option
@now_option
def expire(store_path: Path, now: dt.datetime | None) -> None:
    """Mark certificates past notAfter as expired."""
    for record in lifecycle.expire(_open(store_path), now or _parse_time(None)):
        click.echo(f"{record.role.value}: serial {record.serial:#x} expired")


@pki.command()
@store_option
@click.argument("card")
def status(store_path: Path, card: str) -> None:
    """A card's certificates and their status (CARD: card id or card image directory)."""
    pki_ = _open(store_path)
    for r in pki_.store.card_certificates(_card(card)[0]):
        reason = r.reason.value if r.reason else "-"
        click.echo(f"{r.role.value} {r.kind}-g{r.generation} {r.serial:#x} {r.status.value} "
                   f"{reason}")


@pki.command()
@store_option
@click.option("--kind", type=click.Choice(sorted(CA_KINDS)), required=True)
@now_option
def rollover(store_path: Path, kind: str, now: dt.datetime | None) -> None:
    """Start a new key generation of a CA (same DN, link certificates both ways)."""
    ca = _open(store_path).rollover(CA_KINDS[kind], now or _parse_time(None))
    click.echo(f"{kind} CA generation {ca.generation}")


@pki.command()
@store_option
@click.option("--out", type=click.Path(path_type=Path), default=Path("crl"), show_default=True)
@click.option("--delta-only", is_flag=True, help="Only delta CRLs (and ARLs) on the last base.")
@now_option
def publish(store_path: Path, out: Path, delta_only: bool, now: dt.datetime | None) -> None:
    """Issue and write CRLs, delta CRLs and ARLs for every CA generation (DER)."""
    from .publish import publish as do_publish

    for path in do_publish(_open(store_path), out, now or _parse_time(None),
                           complete=not delta_only):
        click.echo(str(path))


@pki.command()
@store_option
@click.option("--crl-dir", type=click.Path(path_type=Path), default=Path("crl"),
              show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="Default: the port of the store's URLs.")
@click.option("--fail", type=click.Choice(["none", "trylater", "unauthorized"]), default="none",
              help="Make the OCSP responder answer with this error.")
@click.option("--publish/--no-publish", "do_publish", default=True,
              help="Publish fresh CRLs into --crl-dir before serving.")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
def serve(store_path: Path, crl_dir: Path, host: str, port: int | None, fail: str,
          do_publish: bool, duration: float | None) -> None:
    """Serve CRLs and OCSP over HTTP on a loopback address."""
    from urllib.parse import urlsplit

    from .ocsp import FailureMode, OCSPResponder
    from .publish import publish as publish_crls
    from .server import LoopbackOnly, RevocationServer, check_loopback

    try:
        check_loopback(host)  # before anything is published: a refused command changes nothing
    except LoopbackOnly as exc:
        raise click.ClickException(str(exc)) from exc
    pki_ = _open(store_path)
    if do_publish:
        publish_crls(pki_, crl_dir, _parse_time(None))
    port = port if port is not None else (urlsplit(pki_.base_url).port or 80)
    server = RevocationServer(host, port, crl_dir, OCSPResponder(pki_, failure=FailureMode(fail)))
    click.echo(f"serving {crl_dir} and OCSP on {server.url}", err=True)
    server.start_background()
    try:
        deadline = None if duration is None else time.monotonic() + duration
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()


def _load_pem_bundle(path: Path, marker: str) -> list[bytes]:
    """DER blobs of every PEM block of one kind in a file (or a single DER file)."""
    data = path.read_bytes()
    if not data.strip():
        return []
    if b"-----BEGIN" not in data:
        return [data]
    import base64

    blobs = []
    begin, end = f"-----BEGIN {marker}-----".encode(), f"-----END {marker}-----".encode()
    for chunk in data.split(begin)[1:]:
        body = chunk.split(end)[0]
        blobs.append(base64.b64decode(b"".join(body.split())))
    return blobs


@pki.command()
@click.argument("certificate", type=click.Path(exists=True, path_type=Path))
@click.option("--anchors", type=click.Path(exists=True, path_type=Path), multiple=True,
              help="Trust anchors (PEM bundle or DER); repeatable.")
@click.option("--intermediates", type=click.Path(exists=True, path_type=Path), multiple=True,
              help="Other certificates, e.g. link certificates (PEM bundle or DER); repeatable.")
@click.option("--crls", type=click.Path(exists=True, path_type=Path), multiple=True,
              help="CRLs, delta CRLs, ARLs (PEM bundle or DER); repeatable.")
@click.option("--ocsp-response", type=click.Path(exists=True, path_type=Path), multiple=True)
@click.option("--store", "store_path", type=click.Path(path_type=Path), default=None,
              help="Take anchors (all generations) and link certificates from this store.")
@click.option("--at", "at", type=TIME, default=None, help="Validation time (default: now).")
@click.option("--method", type=click.Choice(["any", "crl", "ocsp"]), default="any",
              show_default=True)
@click.option("--nonce", default=None, help="Expected OCSP nonce (hex).")
@click.option("--fetch", is_flag=True, help="Fetch CRLs and OCSP from the certificate's URLs.")
def verify(certificate: Path, anchors: tuple[Path, ...], intermediates: tuple[Path, ...],
           crls: tuple[Path, ...], ocsp_response: tuple[Path, ...], store_path: Path | None,
           at: dt.datetime | None, method: str, nonce: str | None, fetch: bool) -> None:
    """Validate an end-entity certificate. Prints the verdict; exit status 0 only if valid."""
    from .validate import Policy, RevocationMethod, Validator

    try:
        anchor_certs = [x509.load_der_x509_certificate(d) for p in anchors
                        for d in _load_pem_bundle(p, "CERTIFICATE")]
        others = [x509.load_der_x509_certificate(d) for p in intermediates
                  for d in _load_pem_bundle(p, "CERTIFICATE")]
    except ValueError as exc:
        raise click.ClickException(f"unreadable anchor or intermediate: {exc}") from exc
    if store_path is not None:
        pki_ = _open(store_path)
        anchor_certs += pki_.trust_anchors()
        others += pki_.link_certificates()
    methods = {"any": (RevocationMethod.OCSP, RevocationMethod.CRL),
               "crl": (RevocationMethod.CRL,), "ocsp": (RevocationMethod.OCSP,)}[method]
    policy = Policy(methods=methods, ocsp_nonce=bytes.fromhex(nonce) if nonce else None)
    fetcher = None
    if fetch:
        from .fetch import http_fetch as fetcher
    validator = Validator(anchor_certs, others,
                          [d for p in crls for d in _load_pem_bundle(p, "X509 CRL")],
                          [p.read_bytes() for p in ocsp_response if p.stat().st_size],
                          policy=policy, fetcher=fetcher)
    blobs = _load_pem_bundle(certificate, "CERTIFICATE")
    result = validator.validate(blobs[0] if blobs else b"", at)
    click.echo(result.verdict.value)
    click.echo(result.detail)
    if result.reason is not None:
        click.echo(f"reason: {result.reason.value}")
    if result.revocation_date is not None:
        click.echo(f"revoked: {result.revocation_date.isoformat()}")
    sys.exit(0 if result.is_valid else 1)


@pki.group()
def crl() -> None:
    """CRL tools."""


@crl.command()
@click.option("--entries", type=click.IntRange(0, 20_000_000), required=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="DER CRL file.")
@click.option("--issuer-out", type=click.Path(path_type=Path), default=None,
              help="Also write the issuing CA certificate (PEM) to check the signature.")
@click.option("--seed", type=int, default=0, show_default=True)
@now_option
def synth(entries: int, out: Path, issuer_out: Path | None, seed: int,
          now: dt.datetime | None) -> None:
    """Generate a large, realistic CRL signed by a throwaway CA."""
    from ..fsutil import atomic_write
    from .ca import CertificateAuthority
    from .crlsynth import synthesize_crl
    from .profile import SIGN_CA

    when = (now or _parse_time(None)).replace(microsecond=0)
    ca = CertificateAuthority.create(SIGN_CA, when - dt.timedelta(days=365 * 6))
    with click.progressbar(length=entries, label="entries", file=sys.stderr) as bar:
        done = 0

        def progress(n: int) -> None:
            nonlocal done
            bar.update(n - done)
            done = n

        der, _ = synthesize_crl(ca.certificate.subject, ca.key, entries, when, seed=seed,
                                progress=progress)
    atomic_write(out, der)
    if issuer_out is not None:
        atomic_write(issuer_out, ca.certificate.public_bytes(serialization.Encoding.PEM))
    click.echo(f"{out}: {entries} entries, {len(der)} bytes")


@click.group()
def vectors() -> None:
    """Vendor revocation test vectors."""


@vectors.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("vectors/revocation"),
              show_default=True)
def build(out: Path) -> None:
    """Write the revocation vectors (deterministic) and their manifest."""
    from .vectors import build_vectors

    cases = build_vectors(out)
    click.echo(f"{len(cases)} cases written to {out}")


@vectors.command()
@click.option("--dir", "directory", type=click.Path(exists=True, path_type=Path),
              default=Path("vectors/revocation"), show_default=True)
@click.option("--validator", "template", default=None,
              help="Command template run per case; fields: {dir} {cert} {anchors} "
                   "{intermediates} {chain} {crls} {crls_der} {ocsp} {time} {epoch} {method} "
                   "{nonce}. "
                   "Exit status 0 means valid. Default: this project's validator, in process.")
@click.option("--timeout", type=float, default=60.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
def run(directory: Path, template: str | None, timeout: float, as_json: bool) -> None:
    """Run a validator over every case and print a pass/fail table."""
    from .vectors import run_vectors

    results = run_vectors(directory, template, timeout)
    if as_json:
        click.echo(json.dumps([r._asdict() for r in results], indent=2))
    else:
        width = max((len(r.case_id) for r in results), default=4)
        click.echo(f"{'case':<{width}}  {'expected':<28} {'got':<28} result")
        for r in results:
            click.echo(f"{r.case_id:<{width}}  {r.expected:<28} {r.got:<28} "
                       f"{'PASS' if r.passed else 'FAIL'}")
    passed = sum(r.passed for r in results)
    click.echo(f"{passed} passed, {len(results) - passed} failed")
    sys.exit(0 if passed == len(results) else 1)
