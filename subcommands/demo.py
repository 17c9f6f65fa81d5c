"""``mynacard demo``: issue a card, read both certificates, sign with both keys, verify, lock the
PIN — the tour of the simulator a new user runs first (``make demo``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import click
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..cardsim.perso.issue import issue_card
from ..cardsim.perso.persona import load_persona
from ..client.commands import CardCommandError, WrongPinError
from ..client.jpki import JPKIClient, JPKIKey
from ..iso7816.sw import describe
from ..jpki.ca import SimulatorPKI
from .common import PERSONAS_DIR, connect

DEMO_PERSONA = PERSONAS_DIR / "kokutou-mikiya.yaml"
DEMO_MARKER = ".mynacard-demo"


@click.command("demo")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default="demo-out",
              show_default=True, help="Working directory for the demo's card and PKI.")
def demo(out: Path) -> None:
    """Issue a card, read both certificates, sign with both keys, verify, lock the PIN."""
    _prepare_demo_dir(out)
    persona = load_persona(DEMO_PERSONA)
    card_dir = out / "card"
    step = _Steps()
    step("issue", f"card for {persona.resident.name} from {DEMO_PERSONA.name}")
    issue_card(persona, card_dir, SimulatorPKI.open(out / "pki"))
    message = "マイナンバーカード simulator demo".encode()
    (out / "message.txt").write_bytes(message)
    with connect(card_dir, None) as connection:
        client = JPKIClient(connection)
        step("atr", connection.atr.hex(" ").upper())
        auth_cert = client.read_certificate(JPKIKey.AUTH)
        auth_ca = client.read_certificate(JPKIKey.AUTH, ca=True)
        step("read", f"auth certificate {auth_cert.subject.rfc4514_string()}")
        client.verify(JPKIKey.SIGN, persona.pins.sign)
        sign_cert = client.read_certificate(JPKIKey.SIGN)
        sign_ca = client.read_certificate(JPKIKey.SIGN, ca=True)
        step("read", f"sign certificate {sign_cert.subject.rfc4514_string()} "
                     "(after the signing password)")
        for cert, ca in ((auth_cert, auth_ca), (sign_cert, sign_ca)):
            cert.verify_directly_issued_by(ca)
        step("chain", "both certificates verify against their CA certificates")
        for key, cert, pin in ((JPKIKey.AUTH, auth_cert, persona.pins.auth),
                               (JPKIKey.SIGN, sign_cert, persona.pins.sign)):
            signature = client.sign(key, message, pin)
            public_key = cert.public_key()
            assert isinstance(public_key, rsa.RSAPublicKey)
            public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
            (out / f"{key.value.name}.sig").write_bytes(signature)
            (out / f"{key.value.name}.pub.pem").write_bytes(public_key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
            step("sign", f"{key.value.name} key: 256-byte signature verified with cryptography"
                         f"{_openssl_check(out, key.value.name)}")
        tries = [client.tries_left(JPKIKey.AUTH)]
        for wrong in ("0000", "0001", "0002"):
            try:
                client.verify(JPKIKey.AUTH, wrong)
            except WrongPinError as exc:
                tries.append(exc.tries_left)
        step("lock", "wrong PINs: tries left " + " → ".join(map(str, tries)))
        try:
            client.verify(JPKIKey.AUTH, persona.pins.auth)
        except CardCommandError as exc:
            step("lock", f"right PIN after lockout: {exc.sw:04X} ({describe(exc.sw)})")
    click.echo(f"\nsummary: card in {card_dir}; signatures and public keys in {out}; "
               f"{step.count} steps passed.")


class _Steps:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, tag: str, text: str) -> None:
        self.count += 1
        click.echo(f"[{tag:>5}] {text}")


def _openssl_check(out: Path, name: str) -> str:
    if shutil.which("openssl") is None:
        return " (openssl not installed; skipped its check)"
    result = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", str(out / f"{name}.pub.pem"),
         "-signature", str(out / f"{name}.sig"), str(out / "message.txt")],
        capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise click.ClickException(f"openssl rejected the {name} signature: {result.stdout}"
                                   f"{result.stderr}")
    return " and with openssl dgst -verify"


def _prepare_demo_dir(out: Path) -> None:
    if out.exists() and any(out.iterdir()):
        if not (out / DEMO_MARKER).exists():
            raise click.ClickException(f"{out} is not empty and is not a demo directory; "
                                       "choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / DEMO_MARKER).touch()
