"""``mynacard card …``: issue a card image and inspect any card through the reader layer;
the 券面 and free-space commands (``faces``, ``applets``) join the same group."""

from __future__ import annotations

from pathlib import Path

import click
from cryptography import x509

from ..client.jpki import JPKIClient, JPKIKey
from ..facts.mf import LABELLED_APPLICATIONS
from ..iso7816.apdu import CommandAPDU
from . import applets, faces
from .common import connect, emit, pki_option, reader_options


@click.group()
def card() -> None:
    """Issue and inspect cards."""


@card.command("issue")
@click.argument("persona", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory to create the card image in (must not exist or be empty).")
@pki_option("Simulator PKI that issues the certificates (created on first use).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def card_issue(persona: Path, out: Path, pki_dir: Path, as_json: bool) -> None:
    """Create a card image from a PERSONA YAML file (name, address, birth date, sex, PINs…)."""
    from ..cardsim.perso.issue import issue_card
    from ..cardsim.perso.persona import load_persona
    from ..jpki.ca import SimulatorPKI

    person = load_persona(persona)
    issue_card(person, out, SimulatorPKI.open(pki_dir))
    result = {"card": str(out), "holder": person.resident.name, "my_number": person.my_number,
              "issued": person.issued.isoformat(), "expiry": person.card_expiry.isoformat(),
              "signing_certificate": person.gets_sign_certificate}
    no_sign = "" if person.gets_sign_certificate else (
        ", no signing certificate: " + ("face-auth card" if person.face_auth else "under 15"))
    emit(as_json, result, lambda: click.echo(
        f"issued card for {person.resident.name} in {out} "
        f"(valid {person.issued} – {person.card_expiry}{no_sign})"))


def _cert_summary(cert: x509.Certificate) -> dict[str, str]:
    return {"subject": cert.subject.rfc4514_string(), "issuer": cert.issuer.rfc4514_string(),
            "serial": f"{cert.serial_number:X}",
            "not_before": cert.not_valid_before_utc.isoformat(),
            "not_after": cert.not_valid_after_utc.isoformat()}


def _pin_status(client: JPKIClient) -> dict[str, int]:
    return {key.value.name: client.tries_left(key) for key in JPKIKey}


@card.command("show")
@reader_options
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def card_show(card_dir: Path | None, reader_spec: str | None, as_json: bool) -> None:
    """ATR, applications, certificates and PIN tries left, read through APDUs."""
    with connect(card_dir, reader_spec) as connection:
        applications = {}
        for label, aid in LABELLED_APPLICATIONS:
            response = connection.transmit(CommandAPDU(0x00, 0xA4, 0x04, 0x0C, aid))
            applications[label] = response.ok
        client = JPKIClient(connection)
        certificates = {
            "auth": _cert_summary(client.read_certificate(JPKIKey.AUTH)),
            "auth_ca": _cert_summary(client.read_certificate(JPKIKey.AUTH, ca=True)),
            "sign_ca": _cert_summary(client.read_certificate(JPKIKey.SIGN, ca=True)),
        }
        info = {"atr": connection.atr.hex(" ").upper(), "token": client.token_label(),
                "applications": applications, "certificates": certificates,
                "signing_certificate_present": client.has_sign_certificate(),
                "pin_tries_left": _pin_status(client)}

    def text() -> None:
        click.echo(f"ATR           {info['atr']}")
        click.echo(f"token label   {info['token']}")
        for label, present in applications.items():
            click.echo(f"  {'✓' if present else '✗'} {label}")
        for name, cert in certificates.items():
            click.echo(f"{name:<13} {cert['subject']}")
            click.echo(f"{'':<13} valid {cert['not_before']} → {cert['not_after']}")
        click.echo("sign          (readable after the signing password)"
                   if info["signing_certificate_present"] else "sign          none on this card")
        for name, tries in info["pin_tries_left"].items():
            click.echo(f"tries left    {name}: {tries}")

    emit(as_json, info, text)


@card.command("pin-status")
@reader_options
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def card_pin_status(card_dir: Path | None, reader_spec: str | None, as_json: bool) -> None:
    """Tries left on the JPKI PIN and password (an empty VERIFY: nothing is consumed)."""
    with connect(card_dir, reader_spec) as connection:
        status = _pin_status(JPKIClient(connection))
    emit(as_json, status, lambda: [click.echo(f"{JPKIKey.named(k).value.pin_label}: {v} "
                                              f"tries left{' (BLOCKED)' if v == 0 else ''}")
                                   for k, v in status.items()])


for command in (faces.read_text, faces.read_face, faces.info, applets.applets):
    card.add_command(command)
