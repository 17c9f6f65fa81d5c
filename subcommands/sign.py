"""``mynacard sign`` and ``mynacard apdu``: a signature from a card key, raw APDUs to any card."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..client.commands import WrongPinError
from ..client.jpki import HASH_NAMES, JPKIClient, JPKIKey
from ..iso7816.apdu import ResponseAPDU
from ..iso7816.sw import describe
from .common import connect, emit, read_pin, reader_options


@click.command("sign")
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
def sign(card_dir: Path | None, reader_spec: str | None, key_name: str, file: Any,
         out: Path | None, pin_env: str | None, hash_name: str) -> None:
    """Sign FILE with a card key (RSASSA-PKCS1-v1_5); the PIN is asked for, hidden."""
    key = JPKIKey.named(key_name)
    message = file.read()
    pin = read_pin(f"{key.value.pin_label}", pin_env)
    target = out or Path(f"{file.name}.sig" if file.name != "<stdin>" else "signature.sig")
    # Checked before the card is touched: a signature nowhere to go must not cost a PIN try.
    if not target.parent.is_dir():
        raise click.BadParameter(f"folder {target.parent} does not exist", param_hint="--out")
    with connect(card_dir, reader_spec) as connection:
        try:
            signature = JPKIClient(connection).sign(key, message, pin, hash_name)
        except WrongPinError as exc:
            raise click.ClickException(f"wrong {key.value.pin_label}: {exc.tries_left} tries "
                                       "left") from None
    try:
        target.write_bytes(signature)
    except OSError as exc:
        raise click.ClickException(f"cannot write {target}: {exc.strerror}") from None
    click.echo(f"wrote {len(signature)}-byte signature to {target}")


@click.command("apdu")
@reader_options
@click.argument("commands", nargs=-1, required=True, metavar="HEX...")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
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
