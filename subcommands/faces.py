"""``mynacard card read-text | read-face | info``: the 券面 APs and card info, verified.

Secrets (PIN, 照合番号A/B, birth-date key) are prompted for, hidden, or read from the
environment variable named by ``--secret-env``; they never go on the command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..client.cardinfo import CardInfoClient
from ..client.records import load_trust_anchors
from ..client.text import TextClient
from ..client.visual import VisualClient
from ..facts import cvc
from .common import connect, default_pki_dir, emit, read_pin, reader_options

CREDENTIALS = {
    "pin": "券面事項入力補助用暗証番号 (4-digit PIN)",
    "code-a": "照合番号A (the 12-digit 個人番号)",
    "code-b": "照合番号B (birth YYMMDD in era years + expiry year + security code)",
    "birth": "生年月日 key (birth YYMMDD in era years)",
}


def default_trust_dir() -> str:
    return str(Path(default_pki_dir()) / "cvc")


def trust_option(func: Any) -> Any:
    return click.option(
        "--trust", "trust_dir", default=default_trust_dir,
        show_default="the simulator PKI's cvc/ directory",
        type=click.Path(file_okay=False, path_type=Path),
        help="Directory of trusted CV root public keys (<number>-<group>.pub.pem).")(func)


def secret_option(func: Any) -> Any:
    return click.option("--secret-env", metavar="VAR",
                        help="Read the credential from this environment variable instead of "
                             "prompting.")(func)


def anchors(trust_dir: Path) -> dict[cvc.KeyId, Any]:
    try:
        found = load_trust_anchors(trust_dir)
    except cvc.CVCError as exc:
        raise click.ClickException(str(exc)) from None
    if not found:
        raise click.ClickException(f"no trusted CV root keys in {trust_dir} (issue a card with "
                                   "the same --pki first, or point --trust at its cvc/)")
    return found


def _secret(credential: str, env: str | None) -> str:
    return read_pin(CREDENTIALS[credential], env)


@click.command("read-text")
@reader_options
@click.option("--with", "credential", type=click.Choice(["pin", "code-a", "code-b"]),
              default="pin", show_default=True,
              help="pin opens both records; code-a only the 個人番号; code-b only the 基本4情報.")
@secret_option
@trust_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def read_text(card_dir: Path | None, reader_spec: str | None, credential: str,
              secret_env: str | None, trust_dir: Path, as_json: bool) -> None:
    """Read the 個人番号 and 基本4情報 from the 券面事項入力補助AP and verify their signature
    chain up to a trusted simulator root."""
    trusted = anchors(trust_dir)
    secret = _secret(credential, secret_env)
    with connect(card_dir, reader_spec) as connection:
        data = TextClient(connection, trusted).read(
            pin=secret if credential == "pin" else None,
            code_a=secret if credential == "code-a" else None,
            code_b=secret if credential == "code-b" else None)
    four = data.basic_four
    result = {"my_number": data.my_number,
              "name": four.name if four else None, "address": four.address if four else None,
              "birth_date": four.birth_date.isoformat() if four else None,
              "sex": four.sex if four else None,
              "verified_by": data.issuer}

    def text() -> None:
        for key, value in result.items():
            if value is not None:
                click.echo(f"{key:12} {value}")
    emit(as_json, result, text)


@click.command("read-face")
@reader_options
@click.option("--with", "credential", type=click.Choice(["code-a", "code-b", "birth"]),
              default="code-b", show_default=True,
              help="code-a: face + 個人番号 image; code-b: face; birth: the age record only.")
@secret_option
@trust_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Write the images (photo.jp2, name.png, …) into this directory.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def read_face(card_dir: Path | None, reader_spec: str | None, credential: str,
              secret_env: str | None, trust_dir: Path, out: Path | None, as_json: bool) -> None:
    """Read the card face from the 券面事項確認AP (photo, name and address images, birth
    date, sex, expiry) and verify its signature chain."""
    trusted = anchors(trust_dir)
    secret = _secret(credential, secret_env)
    with connect(card_dir, reader_spec) as connection:
        client = VisualClient(connection, trusted)
        if credential == "birth":
            result: dict[str, Any] = {"birth_date": client.read_birth_date(secret).isoformat()}
            emit(as_json, result, lambda: click.echo(f"birth_date   {result['birth_date']}"))
            return
        reading = client.read_face(code_a=secret if credential == "code-a" else None,
                                   code_b=secret if credential == "code-b" else None)
    face = reading.face
    images = {"photo.jp2": face.photo_jp2, "name.png": face.name_png,
              "address.png": face.address_png, "security-code.png": face.security_code_png}
    if reading.my_number_png is not None:
        images["my-number.png"] = reading.my_number_png
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for name, data in images.items():
            (out / name).write_bytes(data)
    result = {"birth_date": face.birth_date.isoformat(), "sex": face.sex,
              "expiry": face.expiry.isoformat(),
              "images": {name: len(data) for name, data in images.items()},
              "images_written_to": str(out) if out else None,
              "verified_by": reading.issuer,
              "not_signed": ["expiry", "security-code image"]}

    def text() -> None:
        for key in ("birth_date", "sex", "expiry", "verified_by"):
            click.echo(f"{key:12} {result[key]}")
        for name, size in result["images"].items():
            click.echo(f"{'image':12} {name} ({size} bytes)")
        click.echo("note: the expiry and the security-code image are not covered by the "
                   "signature")
    emit(as_json, result, text)


@click.command("info")
@reader_options
@trust_option
@click.option("--no-verify", is_flag=True,
              help="Skip the MF certificate chain and the chip authentication.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def info(card_dir: Path | None, reader_spec: str | None, trust_dir: Path, no_verify: bool,
         as_json: bool) -> None:
    """Card serial, issuing municipality and expiry (共通AP and MF data objects); unless
    --no-verify, the MF CV chain and an INTERNAL AUTHENTICATE prove the chip genuine."""
    trusted = None if no_verify else anchors(trust_dir)
    with connect(card_dir, reader_spec) as connection:
        card = CardInfoClient(connection, trusted).read()
    result = {"card_serial": card.card_serial, "municipality_code": card.municipality_code,
              "expiry": card.expiry, "card_id": card.card_id, "contact_atr": card.contact_atr,
              "cv_chain": list(card.chain), "chip_authenticated": card.chip_authenticated}

    def text() -> None:
        for key, value in result.items():
            if value not in (None, []):
                click.echo(f"{key:18} {' → '.join(value) if isinstance(value, list) else value}")
    emit(as_json, result, text)
