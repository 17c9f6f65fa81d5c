"""mynacard command line: issue virtual My Number cards, talk to any card, run the demo."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .cardsim.perso.issue import issue_card
from .cardsim.perso.persona import PersonError, load_persona
from .cardsim.serve_cli import serve
from .cardsim.storage import CardImageError
from .client.commands import CardCommandError, CardDataError, WrongPinError
from .client.jpki import HASH_NAMES, JPKIClient, JPKIKey
from .facts.mf import LABELLED_APPLICATIONS
from .iso7816.apdu import APDUFormatError, CommandAPDU, ResponseAPDU
from .iso7816.sw import describe
from .jpki.ca import IssuanceError, PKIStoreError, SimulatorPKI
from .jpki.cli import pki, vectors
from .readers.base import CardConnection, ReaderError
from .readers.registry import open_reader

PROJECT_DIR = Path(__file__).resolve().parent
PERSONAS_DIR = PROJECT_DIR / "vectors" / "personas"
DEMO_PERSONA = PERSONAS_DIR / "kokutou-mikiya.yaml"
DEMO_MARKER = ".mynacard-demo"



def default_pki_dir() -> str:
    data_home = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return os.environ.get("MYNACARD_PKI") or str(data_home / "mynacard" / "pki")


def friendly_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the project's own errors into one clear line and exit status 1, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (PersonError, CardImageError, ReaderError, CardCommandError, CardDataError,
                PKIStoreError, IssuanceError, APDUFormatError) as exc:
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from None

    return wrapper


def reader_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--reader", "reader_spec", metavar="SPEC",
                        help="Reader: sim:DIR (in process), pcsc (first PC/SC reader with a "
                             "card) or pcsc:NAME.")(func)
    return click.option("--card", "card_dir", metavar="DIR",
                        type=click.Path(file_okay=False, path_type=Path),
                        help="Card image directory (same as --reader sim:DIR).")(func)


@contextmanager
def connect(card_dir: Path | None, reader_spec: str | None) -> Iterator[CardConnection]:
    if card_dir is not None and reader_spec is not None:
        raise click.UsageError("give either --card or --reader, not both")
    if card_dir is None and reader_spec is None:
        raise click.UsageError("say which card: --card DIR or --reader SPEC")
    connection = open_reader(reader_spec or f"sim:{card_dir}").connect()
    try:
        yield connection
    finally:
        connection.disconnect()


def emit(as_json: bool, data: dict[str, Any], text: Callable[[], None]) -> None:
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        text()


def read_pin(prompt: str, env_var: str | None) -> str:
    if env_var:
        value = os.environ.get(env_var)
        if value is None:
            raise click.UsageError(f"environment variable {env_var} is not set")
        return value
    return click.prompt(prompt, hide_input=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mynacard")
def main() -> None:
    """Virtual My Number cards (マイナンバーカード), their PKI, and the tools to talk to them.

    Every command that talks to a card goes through the reader layer, so it works the
    same on a simulated card (--card DIR), on the simulator served through pcscd, or on
    a real card in a PC/SC reader (--reader pcsc).
    """


@main.group()
def card() -> None:
    """Issue and inspect cards."""


@card.command("issue")
@click.argument("persona", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory to create the card image in (must not exist or be empty).")
@click.option("--pki", "pki_dir", default=default_pki_dir, show_default="$MYNACARD_PKI or "
              "~/.local/share/mynacard/pki", type=click.Path(file_okay=False, path_type=Path),
              help="Simulator PKI that issues the certificates (created on first use).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@friendly_errors
def card_issue(persona: Path, out: Path, pki_dir: Path, as_json: bool) -> None:
    """Create a card image from a PERSONA YAML file (name, address, birth date, sex, PINs…)."""
    person = load_persona(persona)
    issue_card(person, out, SimulatorPKI.load_or_create(pki_dir))
    result = {"card": str(out), "holder": person.resident.name, "my_number": person.my_number,
              "issued": person.issued.isoformat(), "expiry": person.card_expiry.isoformat(),
              "signing_certificate": person.gets_sign_certificate}
    emit(as_json, result, lambda: click.echo(
        f"issued card for {person.resident.name} in {out} "
        f"(valid {person.issued} – {person.card_expiry}"
        f"{'' if person.gets_sign_certificate else ', no signing certificate: under 15'})"))


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
@friendly_errors
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
@friendly_errors
def card_pin_status(card_dir: Path | None, reader_spec: str | None, as_json: bool) -> None:
    """Tries left on the JPKI PIN and password (an empty VERIFY: nothing is consumed)."""
    with connect(card_dir, reader_spec) as connection:
        status = _pin_status(JPKIClient(connection))
    emit(as_json, status, lambda: [click.echo(f"{JPKIKey.named(k).value.pin_label}: {v} "
                                              f"tries left{' (BLOCKED)' if v == 0 else ''}")
                                   for k, v in status.items()])


@main.command("sign")
@reader_options
@click.option("--key", "key_name", type=click.Choice(["auth", "sign"]), required=True,
              help="auth: user-authentication key (4-digit PIN); sign: signing key (password).")
@click.argument("file", type=click.File("rb"))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the signature (default: FILE.sig).")
@click.option("--pin-env", metavar="VAR", help="Read the PIN from this environment variable "
              "instead of prompting.")
@click.option("--hash", "hash_name", type=click.Choice(sorted(HASH_NAMES)), default="sha256",
              show_default=True)
@friendly_errors
def sign(card_dir: Path | None, reader_spec: str | None, key_name: str, file: Any,
         out: Path | None, pin_env: str | None, hash_name: str) -> None:
    """Sign FILE with a card key (RSASSA-PKCS1-v1_5); the PIN is asked for, hidden."""
    key = JPKIKey.named(key_name)
    message = file.read()
    pin = read_pin(f"{key.value.pin_label}", pin_env)
    target = out or Path(f"{file.name}.sig" if file.name != "<stdin>" else "signature.sig")
    with connect(card_dir, reader_spec) as connection:
        try:
            signature = JPKIClient(connection).sign(key, message, pin, hash_name)
        except WrongPinError as exc:
            raise click.ClickException(f"wrong {key.value.pin_label}: {exc.tries_left} tries "
                                       "left") from None
    target.write_bytes(signature)
    click.echo(f"wrote {len(signature)}-byte signature to {target}")


@main.command("apdu")
@reader_options
@click.argument("commands", nargs=-1, required=True, metavar="HEX...")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@friendly_errors
def apdu(card_dir: Path | None, reader_spec: str | None, commands: tuple[str, ...],
         as_json: bool) -> None:
    """Send raw command APDUs (hex, spaces allowed inside quotes) in one session."""
    try:
        raw = [bytes.fromhex(command.replace(" ", "").replace(":", "")) for command in commands]
    except ValueError as exc:
        raise click.BadParameter(f"not hexadecimal: {exc}") from None
    results = []
    with connect(card_dir, reader_spec) as connection:
        for command in raw:
            response = ResponseAPDU.parse(connection.transmit_raw(command))
            results.append({"command": command.hex().upper(), "data": response.data.hex().upper(),
                            "sw": f"{response.sw:04X}", "meaning": describe(response.sw)})
    emit(as_json, {"responses": results}, lambda: [click.echo(
        f"> {r['command']}\n< {r['data'] + ' ' if r['data'] else ''}{r['sw']}  ({r['meaning']})")
        for r in results])


@main.command("demo")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default="demo-out",
              show_default=True, help="Working directory for the demo's card and PKI.")
@friendly_errors
def demo(out: Path) -> None:
    """Issue a card, read both certificates, sign with both keys, verify, lock the PIN."""
    _prepare_demo_dir(out)
    persona = load_persona(DEMO_PERSONA)
    card_dir = out / "card"
    step = _Steps()
    step("issue", f"card for {persona.resident.name} from {DEMO_PERSONA.name}")
    issue_card(persona, card_dir, SimulatorPKI.load_or_create(out / "pki"))
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


main.add_command(serve)
main.add_command(pki)
main.add_command(vectors)
# The 券面 / card-info / applet commands register themselves on ``card`` (client/cli_cards.py).
from .client import cli_cards  # noqa: E402, F401

if __name__ == "__main__":
    sys.exit(main())
