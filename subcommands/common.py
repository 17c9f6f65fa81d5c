"""What every command group shares: the reader options, opening a connection, printing text or
JSON, reading a secret without echo, the default PKI directory, and lazy command tables."""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from ..readers.base import CardConnection

PERSONAS_DIR = Path(__file__).resolve().parent.parent / "vectors" / "personas"
"""The personas shipped with mynacard (package data, so present in every kind of install)."""


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use, from ``"module:attribute"`` strings
    relative to the ``mynacard`` package: ``mynacard --help`` imports no command module."""

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})
        """Command name → ("module:attribute", one-line help shown by ``--help``)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            module_name, attribute = self.lazy[cmd_name][0].split(":")
            module = importlib.import_module(f".{module_name}",
                                             package=__package__.rpartition(".")[0])
            self.add_command(getattr(module, attribute), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The table's own help lines: asking each command for its help would import them all.
        rows = [(name, self.lazy[name][1] if name in self.lazy
                 else self.commands[name].get_short_help_str())
                for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def data_home() -> Path:
    """``$XDG_DATA_HOME``, where empty counts as unset (XDG Base Directory spec)."""
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def default_pki_dir() -> str:
    """The simulator PKI every command uses unless told otherwise: ``$MYNACARD_PKI`` or
    ``$XDG_DATA_HOME/mynacard/pki``."""
    return os.environ.get("MYNACARD_PKI") or str(data_home() / "mynacard" / "pki")


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
    from ..readers.registry import open_reader

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


def pki_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--pki", "pki_dir", default=default_pki_dir,
                        show_default="$MYNACARD_PKI or $XDG_DATA_HOME/mynacard/pki",
                        type=click.Path(file_okay=False, path_type=Path), help=help_text)


def cv_trust_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--cv-trust DIR``: the CV root public keys a host trusts for the 券面 records and the
    genuine-chip check (default: the simulator PKI's ``cvc/``)."""
    return click.option("--cv-trust", "cv_trust_dir",
                        default=lambda: str(Path(default_pki_dir()) / "cvc"),
                        show_default="the simulator PKI's cvc/ directory",
                        type=click.Path(file_okay=False, path_type=Path),
                        help="Directory of trusted CV root public keys "
                             "(<number>-<group>.pub.pem), for the genuine-chip check.")(func)


def cv_anchors(cv_trust_dir: Path) -> dict[Any, Any]:
    """The CV roots in ``--cv-trust``; none there is a usage error."""
    from ..client.records import load_trust_anchors

    anchors = load_trust_anchors(cv_trust_dir)
    if not anchors:
        raise click.UsageError(f"no trusted CV root keys in {cv_trust_dir}: point --cv-trust at "
                               "the issuing PKI's cvc/ directory")
    return anchors


def relying_party_trust(trust_file: Path | None, cv_trust_dir: Path,
                        env_var: str) -> tuple[tuple[Any, ...], dict[Any, Any]]:
    """What a relying party trusts, from the command line: the authentication CA certificates
    (``--trust PEM``, or ``$env_var``) and the CV roots of the genuine-chip check
    (``--cv-trust DIR``); a missing or unreadable one is a usage error naming the option."""
    from cryptography import x509

    if trust_file is None:
        raise click.UsageError(f"say which CA certificates to trust: --trust PEM or ${env_var} "
                               "(mynacard pki anchors --out FILE writes them)")
    anchors = cv_anchors(cv_trust_dir)
    try:
        certificates = tuple(x509.load_pem_x509_certificates(trust_file.read_bytes()))
    except (OSError, ValueError) as exc:
        raise click.BadParameter(f"{trust_file}: not PEM certificates ({exc})",
                                 param_hint="--trust") from None
    return certificates, anchors
