"""``mynacard app library …``: the library counter on the command line.

Card commands (enrol, lend, renew, hold, member) take the card with ``--card DIR`` or
``--reader SPEC`` and check it through the relying-party recipes, configured by ``--trust``
(the authentication CA certificates, PEM), ``--cv-trust`` and ``--revocation``. Embedders and
tests may hand their own checks in ``ctx.obj["library_checks"]``. Every command takes
``--db`` (a path, ``sqlite:///…`` or ``postgresql://…``) and ``--json``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from ...clock import Clock, system_clock
from ...subcommands.common import (
    connect,
    cv_trust_option,
    data_home,
    emit,
    read_pin,
    reader_options,
    relying_party_trust,
)
from .model import ITEM_TYPES, Link, Loan, Member
from .service import CardChecks, Library, RecipeChecks
from .store import LibraryStore


def default_db() -> str:
    """``$MYNACARD_LIBRARY_DB`` or ``$XDG_DATA_HOME/mynacard/library.db``."""
    return os.environ.get("MYNACARD_LIBRARY_DB") or str(data_home() / "mynacard" / "library.db")


def common_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--json", "as_json", is_flag=True, help="Print JSON.")(func)
    return click.option("--db", "db_url", default=default_db, metavar="URL",
                        show_default="$MYNACARD_LIBRARY_DB or $XDG_DATA_HOME/mynacard/library.db",
                        help="Library database: a path, sqlite:///PATH or postgresql://…")(func)


def card_check_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = reader_options(func)
    func = click.option("--trust", "trust_file", type=click.Path(exists=True, path_type=Path),
                        envvar="MYNACARD_LIBRARY_TRUST", show_envvar=True,
                        help="PEM file of the authentication CA certificates to trust "
                             "(mynacard pki anchors --out FILE).")(func)
    func = cv_trust_option(func)
    func = click.option("--revocation", type=click.Choice(["crl", "ocsp"]), default="crl",
                        show_default=True, help="How revocation is checked (fail closed).")(func)
    return click.option("--terminal", "terminal_id", default="counter-1", show_default=True,
                        help="This counter's terminal id (bound into the challenge).")(func)


def _checks(ctx: click.Context, trust_file: Path | None, cv_trust_dir: Path,
            revocation: str, terminal_id: str) -> CardChecks:
    if ctx.obj and "library_checks" in ctx.obj:
        return ctx.obj["library_checks"]
    from ...client import recipes

    trusted, anchors = relying_party_trust(trust_file, cv_trust_dir, "MYNACARD_LIBRARY_TRUST")
    config = recipes.RevocationConfig(method=revocation, trust_anchors=trusted,
                                      clock=_clock(ctx))
    return RecipeChecks(config, anchors, terminal_id)


def _clock(ctx: click.Context) -> Clock:
    return (ctx.obj or {}).get("library_clock", system_clock)


def _store(db_url: str, ctx: click.Context) -> LibraryStore:
    store = LibraryStore(db_url)
    ctx.call_on_close(store.close)
    return store


def _library(db_url: str, ctx: click.Context, **check_options: Any) -> Library:
    checks = _checks(ctx, **check_options)
    return Library(_store(db_url, ctx), checks, _clock(ctx))


def _loan_json(loan: Loan) -> dict[str, Any]:
    return {"barcode": loan.barcode, "due": loan.due_at.date().isoformat(),
            "renewals": loan.renewals}


def _link_json(link: Link) -> dict[str, Any]:
    return {"user_number": link.user_number, "enrolment": link.method.value,
            "document": link.document, "certificate_not_after": link.not_after.isoformat()}


@click.group()
def library() -> None:
    """Library card (図書館カード): the card's authentication certificate linked to a library
    user number; lending after a staffed PIN-less tap. No fines: 図書館法 §17 forbids charging."""


@library.command()
@card_check_options
@common_options
@click.option("--pin-env", metavar="VAR", help="Read the 4-digit PIN from this variable.")
@click.option("--member", "user_number", metavar="NUMBER",
              help="Move this member's membership to the card (after a certificate renewal).")
@click.option("--staff-document", metavar="KIND",
              help="Staff path for a 顔認証 card (no PIN): the identity document staff checked.")
@click.pass_context
def enrol(ctx: click.Context, card_dir: Path | None, reader_spec: str | None, db_url: str,
          as_json: bool, pin_env: str | None, user_number: str | None,
          staff_document: str | None, **check_options: Any) -> None:
    """Link a card to a library membership: strictly, with the PIN (once)."""
    library_ = _library(db_url, ctx, **check_options)
    with connect(card_dir, reader_spec) as connection:
        if staff_document is not None:
            link = library_.enrol_by_staff(connection, staff_document, user_number=user_number)
        else:
            pin = read_pin("利用者証明用 PIN (4 digits)", pin_env)
            link = library_.enrol(connection, pin, user_number=user_number)
    emit(as_json, _link_json(link), lambda: click.echo(
        f"enrolled: member {link.user_number}"
        + (f" (staff enrolment, {link.document})" if link.document else "")))


def _card_command(name: str, help_text: str,
                  act: Callable[[Library, Any, str], Any]) -> None:
    @library.command(name, help=help_text)
    @card_check_options
    @common_options
    @click.argument("barcodes", nargs=-1, required=True)
    @click.pass_context
    def command(ctx: click.Context, card_dir: Path | None, reader_spec: str | None,
                db_url: str, as_json: bool, barcodes: tuple[str, ...],
                **check_options: Any) -> None:
        library_ = _library(db_url, ctx, **check_options)
        with connect(card_dir, reader_spec) as connection:
            results = [act(library_, connection, barcode) for barcode in barcodes]
        rows = [_loan_json(r) if isinstance(r, Loan) else {"barcode": r.barcode, "held": True}
                for r in results]
        emit(as_json, {name: rows}, lambda: [click.echo(
            f"{row['barcode']}: due {row['due']}" if "due" in row else f"{row['barcode']}: held")
            for row in rows])


_card_command("lend", "Lend items to the card's member (PIN-less tap, staff present).",
              lambda lib, conn, barcode: lib.lend(conn, barcode))
_card_command("renew", "Renew loans once, for 2 weeks, when nobody holds the item.",
              lambda lib, conn, barcode: lib.renew(conn, barcode))
_card_command("hold", "Place holds for the card's member.",
              lambda lib, conn, barcode: lib.hold(conn, barcode))


@library.command("return")
@common_options
@click.argument("barcodes", nargs=-1, required=True)
@click.pass_context
def return_(ctx: click.Context, db_url: str, as_json: bool, barcodes: tuple[str, ...]) -> None:
    """Take items back (no card needed); each loan record is erased."""
    store = _store(db_url, ctx)
    rows = [{"barcode": barcode, "set_aside_for": store.give_back(barcode)}
            for barcode in barcodes]
    emit(as_json, {"returned": rows}, lambda: [click.echo(
        f"{row['barcode']}: returned" + (f", set aside for member {row['set_aside_for']}"
                                         if row["set_aside_for"] else "")) for row in rows])


@library.command()
@card_check_options
@common_options
@click.option("--number", "user_number", metavar="NUMBER",
              help="Look the member up by number instead of by card.")
@click.pass_context
def member(ctx: click.Context, card_dir: Path | None, reader_spec: str | None, db_url: str,
           as_json: bool, user_number: str | None, **check_options: Any) -> None:
    """A member's loans (with due dates) and holds."""
    if user_number is not None:
        found: Member = _store(db_url, ctx).member(user_number)
    else:
        library_ = _library(db_url, ctx, **check_options)
        with connect(card_dir, reader_spec) as connection:
            found = library_.member(connection)
    data = {"user_number": found.user_number,
            "link": _link_json(found.link) if found.link else None,
            "loans": [_loan_json(loan) for loan in found.loans],
            "holds": [hold.barcode for hold in found.holds]}

    def text() -> None:
        click.echo(f"member {found.user_number}"
                   + ("" if found.link else " (no active card link: re-enrol)"))
        for loan in found.loans:
            click.echo(f"  loan {loan.barcode} due {loan.due_at.date()} "
                       f"(renewed {loan.renewals}×)")
        for hold in found.holds:
            click.echo(f"  hold {hold.barcode}")

    emit(as_json, data, text)


@library.group()
def items() -> None:
    """The catalogue's items."""


@items.command("add")
@common_options
@click.argument("barcode")
@click.option("--title", required=True)
@click.option("--type", "item_type", type=click.Choice(ITEM_TYPES), default="book",
              show_default=True)
@click.pass_context
def items_add(ctx: click.Context, db_url: str, as_json: bool, barcode: str, title: str,
              item_type: str) -> None:
    """Add an item."""
    item = _store(db_url, ctx).add_item(barcode, title, item_type)
    emit(as_json, asdict(item), lambda: click.echo(f"added {item.barcode}: {item.title}"))


@items.command("list")
@common_options
@click.pass_context
def items_list(ctx: click.Context, db_url: str, as_json: bool) -> None:
    """Every item, whether it is out (never to whom), and its hold queue length."""
    rows = [{**asdict(item), "on_loan": loan is not None,
             "due": loan.due_at.date().isoformat() if loan else None, "holds": holds}
            for item, loan, holds in _store(db_url, ctx).items()]
    emit(as_json, {"items": rows}, lambda: [click.echo(
        f"{row['barcode']}  {row['item_type']:4}  "
        f"{'out, due ' + row['due'] if row['on_loan'] else 'in':16}  holds {row['holds']}  "
        f"{row['title']}") for row in rows])


@library.command()
@common_options
@click.pass_context
def report(ctx: click.Context, db_url: str, as_json: bool) -> None:
    """Counts for the day (no names, no titles read by whom)."""
    figures = asdict(_store(db_url, ctx).report(_clock(ctx)()))
    emit(as_json, figures, lambda: [click.echo(f"{key.replace('_', ' ')}: {value}")
                                    for key, value in figures.items()])
