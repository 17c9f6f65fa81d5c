"""``mynacard app taxi …``: マイタク's city keys, terminal provisioning and the in-taxi ride.

Embedders and tests may set the terminal's clock in ``ctx.obj["taxi_clock"]``.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from ...clock import Clock, system_clock
from ...gp.scp03 import MASTER_KEY_FILE
from ...readers.base import CardConnection
from ...subcommands.common import (
    connect,
    cv_trust_option,
    data_home,
    default_pki_dir,
    emit,
    read_pin,
    reader_options,
    relying_party_trust,
)
from .keys import CityKeys
from .ledger import Ledger, LedgerError
from .server import LedgerServer, sync_terminal
from .terminal import DEFAULT_MAX_DENY_AGE, Terminal, TerminalConfig, TerminalError


def default_terminal_db() -> str:
    """``$MYNACARD_TAXI_TERMINAL_DB`` or ``$XDG_DATA_HOME/mynacard/taxi-terminal.db``."""
    return os.environ.get("MYNACARD_TAXI_TERMINAL_DB") \
        or str(data_home() / "mynacard" / "taxi-terminal.db")


def _clock(ctx: click.Context) -> Clock:
    return (ctx.obj or {}).get("taxi_clock", system_clock)


def terminal_options(func: Any) -> Any:
    func = click.option("--db", "db_url", default=default_terminal_db, metavar="URL",
                        show_default="$MYNACARD_TAXI_TERMINAL_DB or "
                                     "$XDG_DATA_HOME/mynacard/taxi-terminal.db",
                        help="The terminal's local store (a path or sqlite:///PATH).")(func)
    return click.option("--config", "config_file", required=True,
                        type=click.Path(dir_okay=False, exists=True, path_type=Path),
                        help="Terminal configuration written by 'provision'.")(func)


def _terminal(ctx: click.Context, config_file: Path, db_url: str,
              max_deny_days: int | None = None) -> Terminal:
    config = TerminalConfig.from_json(config_file.read_text())
    age = dt.timedelta(days=max_deny_days) if max_deny_days else DEFAULT_MAX_DENY_AGE
    terminal = Terminal(db_url, config, clock=_clock(ctx), max_deny_age=age)
    ctx.call_on_close(terminal.close)
    return terminal


@click.group()
def taxi() -> None:
    """マイタク taxi-fare subsidy: a card application in the free space, an offline in-taxi
    terminal (one rider: half the fare up to ¥1,000; two or more: ¥500 each, never more than
    the fare; 2 rides a day; a yearly quota)."""


@taxi.command("city-keys")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for the city's master keys and record-signing key (mode 0600).")
def city_keys(out: Path) -> None:
    """Create the city's マイタク keys."""
    if (out / "masters.json").exists():
        raise click.UsageError(f"{out} already holds city keys; refusing to replace them")
    CityKeys.generate().save(out)
    click.echo(f"city keys written to {out}")


@taxi.command()
@click.option("--keys", "keys_dir", required=True,
              type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--terminal-id", required=True, help="8 ASCII characters, e.g. TAXI0001.")
@click.option("--company", required=True, help="The taxi company the terminal claims for.")
@click.option("--municipality", required=True, help="全国地方公共団体コード (5 digits).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def provision(keys_dir: Path, terminal_id: str, company: str, municipality: str,
              out: Path) -> None:
    """Write a terminal's configuration: its own diversified key and the city's public key."""
    raw_id = terminal_id.encode()
    if len(raw_id) != 8 or not terminal_id.isascii() or not terminal_id.isprintable():
        raise click.BadParameter("must be exactly 8 printable ASCII characters",
                                 param_hint="--terminal-id")
    if len(municipality) != 5 or not municipality.isdigit():
        raise click.BadParameter("must be 5 digits", param_hint="--municipality")
    city = CityKeys.load(keys_dir)
    config = TerminalConfig(raw_id, company, municipality, city.terminal_key(raw_id),
                            city.public_pem())
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(config.to_json())
    click.echo(f"terminal {terminal_id} provisioned: {out}")


@taxi.command("deny-list")
@terminal_options
@click.option("--rider", "riders", multiple=True, metavar="HEX",
              help="A stopped rider id (hex, 16 digits); repeat for more.")
@click.pass_context
def deny_list(ctx: click.Context, config_file: Path, db_url: str, riders: tuple[str, ...]
              ) -> None:
    """Install the city's deny list on the terminal (dated now), replacing the old one."""
    for rider in riders:
        if len(rider) != 16 or any(c not in "0123456789abcdef" for c in rider.lower()):
            raise click.BadParameter(f"{rider!r} is not 16 hex digits", param_hint="--rider")
    terminal = _terminal(ctx, config_file, db_url)
    terminal.install_deny_list([r.lower() for r in riders], terminal.clock())
    click.echo(f"deny list installed: {len(set(riders))} stopped rider(s)")


@taxi.command()
@terminal_options
@click.option("--fare", type=click.IntRange(1, 10_000_000), required=True,
              help="The meter fare in yen.")
@click.option("--riders", "rider_specs", multiple=True, required=True, metavar="SPEC",
              help="Each rider's card: a reader spec (sim:DIR, pcsc, pcsc:NAME); repeat.")
@click.option("--max-deny-age", "max_deny_days", type=click.IntRange(1, 365),
              help="Refuse to run on a deny list older than this many days (default 7).")
@click.option("--online", "online_ledger", metavar="URL",
              help="The online variant: tap each card's authentication certificate and ask "
                   "this ledger (e.g. http://127.0.0.1:8180) instead of using the card's "
                   "free space; needs --trust.")
@click.option("--trust", "trust_file", type=click.Path(exists=True, path_type=Path),
              envvar="MYNACARD_TAXI_TRUST", show_envvar=True,
              help="With --online: PEM file of the authentication CA certificates to trust.")
@cv_trust_option
@click.option("--revocation", type=click.Choice(["crl", "ocsp"]), default="crl",
              show_default=True, help="With --online: how revocation is checked (fail closed).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def ride(ctx: click.Context, config_file: Path, db_url: str, fare: int,
         rider_specs: tuple[str, ...], max_deny_days: int | None, online_ledger: str | None,
         trust_file: Path | None, cv_trust_dir: Path, revocation: str, as_json: bool) -> None:
    """A ride: check and debit each rider's card (offline), queue the receipts; with
    --online, tap each card and let the ledger count the ride."""
    from ...readers.registry import open_reader

    connections: list[CardConnection] = []
    try:
        for spec in rider_specs:
            connections.append(open_reader(spec).connect())
        if online_ledger is not None:
            _ride_online(ctx, config_file, connections, fare, online_ledger, trust_file,
                         cv_trust_dir, revocation, as_json)
            return
        result = _terminal(ctx, config_file, db_url, max_deny_days).ride(connections, fare)
    finally:
        for connection in connections:
            connection.disconnect()
    cards = [{"rider": o.rider_id,
              "subsidy": o.receipt.subsidy if o.receipt else 0,
              "sequence": o.receipt.sequence if o.receipt else None,
              "refused": o.refusal.reason.value if o.refusal else None,
              "message": str(o.refusal) if o.refusal else None} for o in result.outcomes]

    def text() -> None:
        for card in cards:
            click.echo(f"{card['rider'] or 'card'}: "
                       + (card["message"] or f"subsidy ¥{card['subsidy']:,} "
                                             f"(receipt {card['sequence']})"))
        click.echo(f"fare ¥{fare:,}  subsidy ¥{result.subsidy:,}  to pay ¥{result.to_pay:,}")

    emit(as_json, {"fare": fare, "subsidy": result.subsidy, "to_pay": result.to_pay,
                   "cards": cards}, text)
    if not any(o.receipt for o in result.outcomes):
        refusal = next(o.refusal for o in result.outcomes if o.refusal)
        raise NoSubsidy(f"no subsidy for this ride: {refusal}")


@taxi.command()
@terminal_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def queue(ctx: click.Context, config_file: Path, db_url: str, as_json: bool) -> None:
    """The rides waiting for the ledger, with their card receipts."""
    rows = [{"rider": rider, "sequence": r.sequence, "time": r.ride.time.decode(),
             "fare": r.ride.fare, "riders": r.ride.riders, "subsidy": r.subsidy,
             "receipt": r.encode().hex()}
            for rider, r in _terminal(ctx, config_file, db_url).queued(unsynced_only=True)]
    emit(as_json, {"rides": rows}, lambda: [click.echo(
        f"{r['rider']} #{r['sequence']} {r['time']} fare ¥{r['fare']:,} "
        f"subsidy ¥{r['subsidy']:,}") for r in rows])


def default_ledger_db() -> str:
    """``$MYNACARD_TAXI_LEDGER_DB`` or ``$XDG_DATA_HOME/mynacard/taxi-ledger.db``."""
    return os.environ.get("MYNACARD_TAXI_LEDGER_DB") \
        or str(data_home() / "mynacard" / "taxi-ledger.db")


def ledger_options(func: Any) -> Any:
    func = click.option("--ledger-db", "ledger_url", default=default_ledger_db, metavar="URL",
                        show_default="$MYNACARD_TAXI_LEDGER_DB or "
                                     "$XDG_DATA_HOME/mynacard/taxi-ledger.db",
                        help="The city ledger: a path, sqlite:///PATH or postgresql://….")(func)
    return click.option("--keys", "keys_dir", required=True,
                        type=click.Path(file_okay=False, exists=True, path_type=Path),
                        help="The city's key directory (from 'city-keys').")(func)


def _ledger(ctx: click.Context, keys_dir: Path, ledger_url: str) -> Ledger:
    ledger = Ledger(ledger_url, CityKeys.load(keys_dir))
    ctx.call_on_close(ledger.close)
    return ledger


@taxi.command()
@ledger_options
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback only.")
@click.option("--port", default=8180, show_default=True, type=click.IntRange(0, 65535))
@click.option("--verbose", is_flag=True, help="Log every request.")
@click.pass_context
def serve(ctx: click.Context, keys_dir: Path, ledger_url: str, host: str, port: int,
          verbose: bool) -> None:
    """Run the city ledger over HTTP (terminals sync to it) until interrupted."""
    server = LedgerServer(host, port, _ledger(ctx, keys_dir, ledger_url), clock=_clock(ctx),
                          verbose=verbose)
    click.echo(f"マイタク ledger on {server.url}", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _ride_online(ctx: click.Context, config_file: Path, connections: list[CardConnection],
                 fare: int, ledger_url: str, trust_file: Path | None, cv_trust_dir: Path,
                 revocation: str, as_json: bool) -> None:
    from ...client import recipes
    from .online import ride_online
    from .server import ask_online_ride

    trusted, anchors = relying_party_trust(trust_file, cv_trust_dir, "MYNACARD_TAXI_TRUST")
    rp = recipes.RevocationConfig(method=revocation, trust_anchors=trusted, clock=_clock(ctx))
    config = TerminalConfig.from_json(config_file.read_text())
    cards = ride_online(
        connections, fare, tap=lambda conn: recipes.tap_check(conn, rp, cv_anchors=anchors),
        ask=lambda keys, amount: ask_online_ride(config, ledger_url, keys, amount))
    subsidy = sum(card.subsidy for card in cards)
    answer = [{"rider": card.outcome.rider if card.outcome else None,
               "subsidy": card.subsidy, "refused": card.refusal,
               "message": str(card.tap_refusal) if card.tap_refusal else None}
              for card in cards]

    def text() -> None:
        for card in answer:
            click.echo(f"{card['rider'] or 'card'}: " + (
                card["message"] or (f"refused: {card['refused']}" if card["refused"]
                                    else f"subsidy ¥{card['subsidy']:,}")))
        click.echo(f"fare ¥{fare:,}  subsidy ¥{subsidy:,}  to pay ¥{fare - subsidy:,}")

    emit(as_json, {"fare": fare, "subsidy": subsidy, "to_pay": fare - subsidy,
                   "cards": answer, "online": True}, text)
    if subsidy == 0:
        raise NoSubsidy("no subsidy for this ride: "
                        + ", ".join(card["refused"] or "refused" for card in answer))


@taxi.command()
@terminal_options
@click.option("--ledger", "ledger_url", required=True, metavar="URL",
              help="The city ledger, e.g. http://127.0.0.1:8180.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def sync(ctx: click.Context, config_file: Path, db_url: str, ledger_url: str,
         as_json: bool) -> None:
    """Upload the queued rides to the ledger and take its deny list back."""
    report = sync_terminal(_terminal(ctx, config_file, db_url), ledger_url)
    emit(as_json, asdict(report), lambda: click.echo(
        f"uploaded {report.uploaded}: {report.accepted} accepted, {report.duplicates} "
        f"already counted, {len(report.rejected)} rejected, {len(report.flagged)} flagged; "
        f"deny list: {report.deny} stopped rider(s)"))


@taxi.command()
@ledger_options
@click.option("--company", required=True)
@click.option("--month", required=True, metavar="YYYY-MM")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the CSV here (default: standard output).")
@click.pass_context
def claim(ctx: click.Context, keys_dir: Path, ledger_url: str, company: str, month: str,
          out: Path | None) -> None:
    """The monthly claim of one taxi company (CSV)."""
    text = _ledger(ctx, keys_dir, ledger_url).claim_csv(company, month)
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")


@taxi.command("resident-feed")
@ledger_options
@click.argument("feed", type=click.File("r", encoding="utf-8"))
@click.pass_context
def resident_feed(ctx: click.Context, keys_dir: Path, ledger_url: str, feed: Any) -> None:
    """Stop the cards of residents who moved out or died (JSON feed, '-' for stdin)."""
    for resident, riders in _ledger(ctx, keys_dir, ledger_url).apply_resident_feed(feed.read()):
        click.echo(f"{resident}: " + (", ".join(riders) + " stopped" if riders
                                      else "no active card"))


@taxi.command()
@ledger_options
@click.option("--crl", "crl_file", required=True, type=click.File("rb"),
              help="A JPKI authentication CRL (DER).")
@click.option("--issuer", "issuer_file", required=True, type=click.File("rb"),
              help="The CA certificate that signed it (PEM, from 'mynacard pki anchors').")
@click.pass_context
def revocations(ctx: click.Context, keys_dir: Path, ledger_url: str, crl_file: Any,
                issuer_file: Any) -> None:
    """Stop the cards whose enrolment certificate the CRL revokes (hold = lost card)."""
    from cryptography import x509

    try:
        crl = x509.load_der_x509_crl(crl_file.read())
        issuer = x509.load_pem_x509_certificate(issuer_file.read())
    except ValueError as exc:
        raise LedgerError(f"cannot read the CRL or the CA certificate: {exc}") from None
    stopped = _ledger(ctx, keys_dir, ledger_url).apply_revocations(crl, issuer)
    for rider, why in stopped:
        click.echo(f"{rider}: stopped ({why.value})")
    click.echo(f"{len(stopped)} card(s) stopped")


@taxi.command()
@ledger_options
@reader_options
@click.option("--records", "records_file", required=True,
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The city's resident and welfare records (.json list or CSV); see "
                   "docs/taxi.md for the columns.")
@click.option("--resident", required=True, help="The resident's key in the records (宛名番号).")
@click.option("--municipality", required=True, help="全国地方公共団体コード (5 digits).")
@click.option("--yearly-quota", type=click.IntRange(1, 999), default=70, show_default=True)
@click.option("--trust", "trust_file", type=click.Path(exists=True, path_type=Path),
              envvar="MYNACARD_TAXI_TRUST", show_envvar=True,
              help="PEM file of the authentication CA certificates to trust "
                   "(mynacard pki anchors --out FILE).")
@cv_trust_option
@click.option("--revocation", type=click.Choice(["crl", "ocsp"]), default="crl",
              show_default=True, help="How revocation is checked (fail closed).")
@click.option("--issuer-key", "issuer_key_file",
              default=lambda: str(Path(default_pki_dir()) / MASTER_KEY_FILE),
              show_default="isd-master.key of the simulator PKI",
              type=click.Path(dir_okay=False, path_type=Path),
              help="The card issuer's free-space master key (hex), to install the applet.")
@click.option("--pin-env", metavar="VAR", help="Read the 4-digit PIN from this variable.")
@click.option("--staff-document", metavar="KIND",
              help="Staff path for a 顔認証 card (no PIN): the identity document staff checked.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def enrol(ctx: click.Context, keys_dir: Path, ledger_url: str, card_dir: Path | None,
          reader_spec: str | None, records_file: Path, resident: str, municipality: str,
          yearly_quota: int, trust_file: Path | None, cv_trust_dir: Path, revocation: str,
          issuer_key_file: Path, pin_env: str | None, staff_document: str | None,
          as_json: bool) -> None:
    """The city counter: check the card holder (strictly, or the staff path), decide
    eligibility from the records, install and personalise マイタク, register in the ledger."""
    from ...client import recipes
    from .counter import Counter, IdentityChecks
    from .eligibility import load_records

    trusted, anchors = relying_party_trust(trust_file, cv_trust_dir, "MYNACARD_TAXI_TRUST")
    try:
        issuer_master = bytes.fromhex(issuer_key_file.read_text().strip())
    except (OSError, ValueError) as exc:
        raise click.BadParameter(f"{issuer_key_file}: not a hex key ({exc})",
                                 param_hint="--issuer-key") from None
    clock = _clock(ctx)
    checks = IdentityChecks(recipes.RevocationConfig(method=revocation, trust_anchors=trusted,
                                                     clock=clock), anchors)
    counter = Counter(CityKeys.load(keys_dir), _ledger(ctx, keys_dir, ledger_url),
                      load_records(records_file), checks, issuer_master, municipality,
                      clock=clock, yearly_quota=yearly_quota)
    with connect(card_dir, reader_spec) as connection:
        if staff_document is not None:
            done = counter.enrol(connection, resident, staff_document=staff_document)
        else:
            done = counter.enrol(connection, resident,
                                 pin=read_pin("利用者証明用 PIN (4 digits)", pin_env))
    data = {**asdict(done), "valid_from": done.valid_from.isoformat(),
            "valid_to": done.valid_to.isoformat()}
    emit(as_json, data, lambda: click.echo(
        f"resident {done.resident} registered: rider {done.rider_id}, category "
        f"{done.category} ({done.rule}), {done.yearly_quota} rides a year, valid "
        f"{done.valid_from}–{done.valid_to}"
        + (f" [staff enrolment, {done.staff_document}]" if done.staff_document else "")))


class NoSubsidy(TerminalError):
    """Every card of the ride was refused (the messages say why)."""

