"""``mynacard pki …``: the simulator's JPKI from the command line."""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

import click
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..clock import system_clock
from ..facts.person import Resident
from ..jpki import lifecycle
from ..jpki.ca import DEFAULT_BASE_URL, CardCertificates, SimulatorPKI, new_rsa_key
from ..jpki.pem import load_bundle
from ..jpki.profile import CA_KINDS
from ..jpki.store import Role
from .common import default_pki_dir


def _parse_time(text: str | None) -> dt.datetime:
    if text is None:
        return system_clock()
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


class _Hex(click.ParamType):
    name = "HEX"

    def convert(self, value, param, ctx):  # noqa: ANN001 - click's signature
        if isinstance(value, bytes):
            return value
        try:
            return bytes.fromhex(value)
        except ValueError:
            self.fail(f"{value!r} is not hexadecimal", param, ctx)


HEX = _Hex()
store_option = click.option(
    "--store", "--pki", "store_path", type=click.Path(path_type=Path), default=default_pki_dir,
    show_default="$MYNACARD_PKI or $XDG_DATA_HOME/mynacard/pki",
    help="PKI store: a directory (pki.sqlite3 inside) or a .sqlite3 file.")
now_option = click.option("--now", type=TIME, default=None,
                          help="The event's time (ISO 8601; default: the clock).")


def _open(store_path: Path, now: dt.datetime | None = None) -> SimulatorPKI:
    return SimulatorPKI.open(store_path, now=now)


def _read_resident(path: Path) -> Resident:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"{path}: cannot be read as UTF-8 text ({exc})") from None
    return Resident.from_json(text)


def _card_key() -> rsa.RSAPublicKey:
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
def issue(store_path: Path, resident_file: Path, card_id: str | None, card_expiry: dt.datetime,
          no_sign: bool, out: Path | None, now: dt.datetime | None) -> None:
    """Issue a card's certificates."""
    resident = _read_resident(resident_file)
    pki_ = _open(store_path)
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


def _has_sign(pki_: SimulatorPKI, card_id: str, *, ever: bool = False) -> bool:
    records = (pki_.store.card_certificates(card_id) if ever
               else lifecycle.live_certificates(pki_, card_id))
    return any(r.role is Role.SIGN for r in records)


def _replace_certificates(event_name: str, store_path: Path, card: str, out: Path | None,
                          now: dt.datetime | None) -> None:
    """Renewal and reissue alike: a card image gets new keys and certificates written into
    it; a bare card id gets certificates for stand-in keys."""
    from ..cardsim.perso import reissue as image_events

    pki_, (card_id, image) = _open(store_path), _card(card)
    when = now or _parse_time(None)
    if image is not None:
        _report(getattr(image_events, event_name)(pki_, image, when), out)
        return
    had_sign = _has_sign(pki_, card_id, ever=event_name == "reissue")
    _report(getattr(lifecycle, event_name)(pki_, card_id, _card_key(),
                                           _card_key() if had_sign else None, when), out)


@_event_command("renew", "Renew both certificates (old ones revoked: superseded).")
def renew_cmd(store_path: Path, card: str, out: Path | None, now: dt.datetime | None) -> None:
    _replace_certificates("renew", store_path, card, out, now)


@_event_command("change-address", "Change of address or name: new signing certificate, old "
                "one revoked (affiliationChanged); authentication untouched.",
                needs_resident=True)
def change_address_cmd(store_path: Path, card: str, resident_file: Path, out: Path | None,
                       now: dt.datetime | None) -> None:
    resident = _read_resident(resident_file)
    pki_, (card_id, image) = _open(store_path), _card(card)
    when = now or _parse_time(None)
    if image is not None:
        from ..cardsim.perso import reissue as cardimage

        _report(cardimage.change_resident(pki_, image, resident, when), out)
        return
    _report(lifecycle.change_resident(pki_, card_id, resident,
                                      _card_key() if _has_sign(pki_, card_id) else None, when),
            out)


@_event_command("reissue", "Reissue a card's certificates after loss.")
def reissue_cmd(store_path: Path, card: str, out: Path | None, now: dt.datetime | None) -> None:
    _replace_certificates("reissue", store_path, card, out, now)


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
    card_id = _card(card)[0]
    lifecycle.card(pki_, card_id)  # an unknown card is an error, not an empty list
    for r in pki_.store.card_certificates(card_id):
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
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("crl"),
              show_default=True)
@click.option("--delta-only", is_flag=True, help="Only delta CRLs (and ARLs) on the last base.")
@now_option
def publish(store_path: Path, out: Path, delta_only: bool, now: dt.datetime | None) -> None:
    """Issue and write CRLs, delta CRLs and ARLs for every CA generation (DER)."""
    from ..jpki.publish import publish as do_publish

    for path in do_publish(_open(store_path), out, now or _parse_time(None),
                           complete=not delta_only):
        click.echo(str(path))


@pki.command()
@store_option
@click.option("--kind", type=click.Choice(sorted(CA_KINDS)), default="auth", show_default=True,
              help="auth: the user-authentication CA (what relying parties such as the library "
                   "trust); sign: the signing CA.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="PEM file to write (every generation of the CA).")
def anchors(store_path: Path, kind: str, out: Path) -> None:
    """Write a CA's certificates, every generation, as the PEM bundle a relying party trusts."""
    pki_ = _open(store_path)
    generations = pki_.generations(CA_KINDS[kind])
    try:
        out.write_bytes(b"".join(ca.certificate.public_bytes(serialization.Encoding.PEM)
                                 for ca in generations))
    except OSError as exc:
        raise click.BadParameter(f"{out}: cannot be written ({exc.strerror})") from None
    click.echo(f"{len(generations)} {kind} CA certificate(s) written to {out}")


@pki.command()
@store_option
@click.option("--crl-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("crl"),
              show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Default: the port of the store's URLs.")
@click.option("--fail", type=click.Choice(["none", "trylater", "unauthorized"]), default="none",
              help="Make the OCSP responder answer with this error.")
@click.option("--publish/--no-publish", "do_publish", default=True,
              help="Publish fresh CRLs into --crl-dir before serving.")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
def serve(store_path: Path, crl_dir: Path, host: str, port: int | None, fail: str,
          do_publish: bool, duration: float | None) -> None:
    """Serve CRLs and OCSP over HTTP on a loopback address."""
    from urllib.parse import urlsplit

    from ..jpki.ocsp import FailureMode, OCSPResponder
    from ..jpki.publish import publish as publish_crls
    from ..jpki.server import RevocationServer
    from ..loopback import LoopbackOnly, check_loopback

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
@click.option("--nonce", type=HEX, default=None, help="Expected OCSP nonce (hex).")
@click.option("--fetch", is_flag=True, help="Fetch CRLs and OCSP from the certificate's URLs.")
def verify(certificate: Path, anchors: tuple[Path, ...], intermediates: tuple[Path, ...],
           crls: tuple[Path, ...], ocsp_response: tuple[Path, ...], store_path: Path | None,
           at: dt.datetime | None, method: str, nonce: bytes | None, fetch: bool) -> None:
    """Validate an end-entity certificate. Prints the verdict; exit status 0 only if valid."""
    from ..jpki.validate import Policy, RevocationMethod, Validator

    try:
        anchor_certs = [x509.load_der_x509_certificate(d) for p in anchors
                        for d in load_bundle(p, "CERTIFICATE")]
        others = [x509.load_der_x509_certificate(d) for p in intermediates
                  for d in load_bundle(p, "CERTIFICATE")]
    except ValueError as exc:
        raise click.ClickException(f"unreadable anchor or intermediate: {exc}") from exc
    if store_path is not None:
        pki_ = _open(store_path)
        anchor_certs += pki_.trust_anchors()
        others += pki_.link_certificates()
    methods = {"any": (RevocationMethod.OCSP, RevocationMethod.CRL),
               "crl": (RevocationMethod.CRL,), "ocsp": (RevocationMethod.OCSP,)}[method]
    policy = Policy(methods=methods, ocsp_nonce=nonce or None)
    fetcher = None
    if fetch:
        from ..jpki.fetch import http_fetch as fetcher
    validator = Validator(anchor_certs, others,
                          [d for p in crls for d in load_bundle(p, "X509 CRL")],
                          [p.read_bytes() for p in ocsp_response if p.stat().st_size],
                          policy=policy, fetcher=fetcher)
    blobs = load_bundle(certificate, "CERTIFICATE")
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
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="DER CRL file.")
@click.option("--issuer-out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the issuing CA certificate (PEM) to check the signature.")
@click.option("--seed", type=int, default=0, show_default=True)
@now_option
def synth(entries: int, out: Path, issuer_out: Path | None, seed: int,
          now: dt.datetime | None) -> None:
    """Generate a large, realistic CRL signed by a throwaway CA."""
    from ..fsutil import atomic_write
    from ..jpki.ca import CertificateAuthority
    from ..jpki.crlsynth import synthesize_crl
    from ..jpki.profile import SIGN_CA

    # Checked first: a CRL of millions of entries must not be built for nowhere.
    for option, target in (("--out", out), ("--issuer-out", issuer_out)):
        if target is not None and not target.parent.is_dir():
            raise click.BadParameter(f"folder {target.parent} does not exist", param_hint=option)
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
