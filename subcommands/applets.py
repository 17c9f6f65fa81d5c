"""``mynacard card applets …``: the free-space area over the issuer channel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..cardsim.perso.issuer_keys import load_or_create_master
from ..client.applets import LOAD_FILES, CardManager, ChannelError
from ..gp import scp03
from .common import connect, emit, pki_option, read_pin, reader_options


def _hex(value: str, what: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise click.BadParameter(f"{what} must be hex, e.g. F06D796E61636F756E7401") from None


def _manager(connection: Any, pki_dir: Path) -> CardManager:
    try:
        manager = CardManager(connection, load_or_create_master(pki_dir, create=False))
        manager.open()
    except (ChannelError, scp03.SCPError) as exc:
        raise click.ClickException(str(exc)) from None
    return manager


PKI_OPTION = pki_option("Simulator PKI holding the issuer master key (isd-master.key).")


@click.group("applets")
def applets() -> None:
    """Card applications in the free-space area (installed over an SCP03-style channel)."""


@applets.command("list")
@reader_options
@PKI_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def applets_list(card_dir: Path | None, reader_spec: str | None, pki_dir: Path,
                 as_json: bool) -> None:
    """List installed applets and the free space left."""
    with connect(card_dir, reader_spec) as connection:
        manager = _manager(connection, pki_dir)
        installed, resources = manager.list(), manager.resources()
    names = {v: k for k, v in LOAD_FILES.items()}
    result = {"capacity": resources.capacity, "free": resources.free,
              "applets": [{"aid": a.aid.hex().upper(), "load_file": names.get(
                  a.load_file, a.load_file.hex().upper()), "quota": a.quota, "used": a.used}
                  for a in installed]}

    def text() -> None:
        click.echo(f"free space: {resources.free} of {resources.capacity} bytes")
        for applet in result["applets"]:
            click.echo(f"{applet['aid']}  {applet['load_file']:10} {applet['used']}/"
                       f"{applet['quota']} bytes")
    emit(as_json, result, text)


@applets.command("install")
@reader_options
@PKI_OPTION
@click.argument("load_file", type=click.Choice(sorted(LOAD_FILES)))
@click.option("--aid", required=True, help="Instance AID, hex (5-16 bytes).")
@click.option("--quota", type=click.IntRange(64, 65535), default=1024, show_default=True,
              help="Bytes of the free space reserved for the instance.")
@click.option("--pin-env", metavar="VAR",
              help="Read the applet's initial PIN from this environment variable.")
def applets_install(card_dir: Path | None, reader_spec: str | None, pki_dir: Path,
                    load_file: str, aid: str, quota: int, pin_env: str | None) -> None:
    """Install an instance of LOAD_FILE (e.g. counter) under a new AID."""
    pin = read_pin("initial applet PIN (4 digits)", pin_env)
    with connect(card_dir, reader_spec) as connection:
        _manager(connection, pki_dir).install(LOAD_FILES[load_file], _hex(aid, "--aid"), quota,
                                              pin.encode("ascii", "replace"))
    click.echo(f"installed {load_file} as {aid.upper()} ({quota} bytes reserved)")


@applets.command("delete")
@reader_options
@PKI_OPTION
@click.argument("aid")
def applets_delete(card_dir: Path | None, reader_spec: str | None, pki_dir: Path,
                   aid: str) -> None:
    """Delete the applet instance AID and free its space."""
    with connect(card_dir, reader_spec) as connection:
        _manager(connection, pki_dir).delete(_hex(aid, "AID"))
    click.echo(f"deleted {aid.upper()}")
