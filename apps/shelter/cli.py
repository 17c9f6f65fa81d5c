"""``mynacard app shelter …``: the shelter desk on the command line, and its staff page.

Every command takes ``--db`` (a path, ``sqlite:///…`` or ``postgresql://…``), ``--device``
(this device's id: it numbers the events) and ``--json``. Card commands take ``--card DIR`` or
``--reader SPEC`` and ``--cv-trust`` (the CV roots that vouch for the 券面 data).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ...clock import Clock, system_clock
from ...subcommands.common import (
    connect,
    cv_anchors,
    cv_trust_option,
    data_home,
    emit,
    read_pin,
    reader_options,
)
from . import card
from .export import JST, counts_csv, roster_csv, safety_csv
from .model import CONSENT_FIELDS, NEEDS, CheckInResult, ShelterError
from .service import DisasterMode, ShelterDesk
from .store import RosterStore
from .sync import (
    import_bundle,
    load_device_key,
    load_trusted_devices,
    make_bundle,
    new_device_key,
    push,
)


def default_db() -> str:
    return os.environ.get("MYNACARD_SHELTER_DB") or str(data_home() / "mynacard" / "shelter.db")


def common_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--json", "as_json", is_flag=True, help="Print JSON.")(func)
    func = click.option("--device", "device_id",
                        default=lambda: os.environ.get("MYNACARD_SHELTER_DEVICE", "desk-1"),
                        show_default="$MYNACARD_SHELTER_DEVICE or desk-1",
                        help="This device's id (events are numbered per device).")(func)
    return click.option("--db", "db_url", default=default_db, metavar="URL",
                        show_default="$MYNACARD_SHELTER_DB or $XDG_DATA_HOME/mynacard/shelter.db",
                        help="Roster database: a path, sqlite:///PATH or postgresql://…")(func)


def shelter_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--shelter", "shelter_id", required=True, metavar="ID",
                        help="The shelter this desk serves.")(func)


def _clock(ctx: click.Context) -> Clock:
    return (ctx.obj or {}).get("shelter_clock", system_clock)


def _store(ctx: click.Context, db_url: str, device_id: str) -> RosterStore:
    store = RosterStore(db_url, device_id)
    ctx.call_on_close(store.close)
    return store


def _desk(ctx: click.Context, store: RosterStore, shelter_id: str, cv_trust_dir: Path,
          basis: str | None = None) -> ShelterDesk:
    return ShelterDesk(store, shelter_id, cv_anchors(cv_trust_dir), clock=_clock(ctx),
                       disaster=DisasterMode(basis) if basis is not None else None)


@click.group()
def shelter() -> None:
    """避難所受付 (shelter check-in): PIN-less and My-Number-free by default (照合番号B from
    the card face), offline, households, sync by signed bundle (USB) or HTTP."""


@shelter.command("add-shelter")
@common_options
@click.argument("shelter_id")
@click.option("--name", required=True)
@click.option("--municipality", "municipality_code", default="")
@click.option("--capacity", type=click.IntRange(min=1))
@click.pass_context
def add_shelter(ctx: click.Context, db_url: str, device_id: str, as_json: bool,
                shelter_id: str, name: str, municipality_code: str,
                capacity: int | None) -> None:
    """Open (or rename) a shelter on this device."""
    made = _store(ctx, db_url, device_id).add_shelter(
        shelter_id, name, _clock(ctx)(), municipality_code=municipality_code, capacity=capacity)
    emit(as_json, {"shelter": made.id, "name": made.name},
         lambda: click.echo(f"shelter {made.id}: {made.name}"))


def _result_json(result: CheckInResult) -> dict[str, Any]:
    return {"person": result.person.id, "household": result.person.household_id,
            "name": result.person.name, "verified": result.person.card_verified,
            "source": result.person.source.value, "repeat": result.repeat,
            "already_since": result.already_since.isoformat() if result.already_since else None,
            "moved_from": result.movement_from}


def _result_text(result: CheckInResult) -> None:
    if result.repeat and result.already_since:
        click.echo(f"すでに受付済みです ({result.already_since.astimezone(JST):%H:%M}): "
                   f"{result.person.name} — nothing recorded")
    else:
        moved = f" (moved from {result.movement_from})" if result.movement_from else ""
        click.echo(f"checked in: {result.person.name} [{result.person.id}] household "
                   f"{result.person.household_id}"
                   f"{'' if result.person.card_verified else ' (unverified)'}{moved}")


@shelter.command("check-in")
@common_options
@shelter_option
@reader_options
@cv_trust_option
@click.option("--face", nargs=6, metavar="ERA YY MM DD EXPIRY CODE",
              help="照合番号B from the card face, e.g. 昭和 55 2 17 2035 2285.")
@click.option("--code-b", metavar="14DIGITS", help="照合番号B typed whole.")
@click.option("--pin-env", metavar="VAR", help="PIN path: read the 4-digit PIN from VAR.")
@click.option("--manual", "manual_name", metavar="NAME", help="No card: the person's name.")
@click.option("--birth", type=click.DateTime(["%Y-%m-%d"]), help="With --manual.")
@click.option("--sex", type=click.Choice(["0", "1", "2", "9"]), default="0", help="With --manual.")
@click.option("--address", default="", help="With --manual: the address.")
@click.option("--household", "household_id", metavar="ID", help="Add to this household.")
@click.option("--current-address", default="", help="Where they live now, if not the card's.")
@click.option("--need", "needs", multiple=True, type=click.Choice(list(NEEDS)))
@click.option("--consent", multiple=True, type=click.Choice(list(CONSENT_FIELDS)))
@click.option("--disaster-basis", metavar="TEXT",
              help="Municipal disaster mode: the legal basis; the PIN path then also reads "
                   "the My Number, kept apart and never exported.")
@click.pass_context
def check_in(ctx: click.Context, db_url: str, device_id: str, as_json: bool, shelter_id: str,
             card_dir: Path | None, reader_spec: str | None, cv_trust_dir: Path,
             face: tuple[str, ...] | None, code_b: str | None, pin_env: str | None,
             manual_name: str | None, birth: dt.datetime | None, sex: str, address: str,
             household_id: str | None, current_address: str, needs: tuple[str, ...],
             consent: tuple[str, ...], disaster_basis: str | None) -> None:
    """Check a person in: by the card face (default), by PIN, or by hand."""
    store = _store(ctx, db_url, device_id)
    chosen = [x for x in (face, code_b, pin_env, manual_name) if x]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of --face, --code-b, --pin-env, --manual")
    number = None
    if manual_name is not None:
        facts = card.manual_facts(manual_name, address, birth.date() if birth else None, sex)
    else:
        desk = _desk(ctx, store, shelter_id, cv_trust_dir, disaster_basis)
        if face:
            try:
                parts = (face[0], *(int(v) for v in face[1:5]), face[5])
            except ValueError:
                raise click.BadParameter("YY MM DD EXPIRY must be numbers", param_hint="--face"
                                         ) from None
            code_b = desk.code_b_from_face(*parts)
        with connect(card_dir, reader_spec) as connection:
            if code_b:
                facts = desk.read_code_b(connection, code_b)
            else:
                facts, number = desk.read_pin(connection, read_pin("PIN", pin_env))
    desk = ShelterDesk(store, shelter_id, {}, clock=_clock(ctx),
                       disaster=DisasterMode(disaster_basis) if disaster_basis else None)
    result = desk.check_in(facts, household_id=household_id, address_current=current_address,
                           needs=needs, consent=consent, my_number=number)
    emit(as_json, _result_json(result), lambda: _result_text(result))


@shelter.command("check-out")
@common_options
@shelter_option
@click.argument("person_id")
@click.pass_context
def check_out(ctx: click.Context, db_url: str, device_id: str, as_json: bool, shelter_id: str,
              person_id: str) -> None:
    """Record that a person left the shelter."""
    event = _store(ctx, db_url, device_id).check_out(person_id, shelter_id, _clock(ctx)())
    emit(as_json, {"person": person_id, "event": [event.device_id, event.seq]},
         lambda: click.echo(f"checked out: {person_id}"))


@shelter.command()
@common_options
@click.option("--shelter", "shelter_id", metavar="ID", help="Only this shelter.")
@click.pass_context
def roster(ctx: click.Context, db_url: str, device_id: str, as_json: bool,
           shelter_id: str | None) -> None:
    """Who is (or was) where, by shelter and household."""
    rows = [{"shelter": r.shelter_id, "household": r.household_id, "person": r.person.id,
             "name": r.person.name, "present": r.present, "since": r.since.isoformat(),
             "verified": r.person.card_verified, "moved_from": r.moved_from}
            for r in _store(ctx, db_url, device_id).roster(shelter_id)]
    emit(as_json, {"roster": rows}, lambda: [click.echo(
        f"{r['shelter']}  {r['household']}  {r['person']}  {'在所' if r['present'] else '退所'}  "
        f"{r['name']}{'' if r['verified'] else ' (未確認)'}") for r in rows])


@shelter.command()
@common_options
@shelter_option
@click.pass_context
def counts(ctx: click.Context, db_url: str, device_id: str, as_json: bool,
           shelter_id: str) -> None:
    """Head counts by age band and needs (for supplies)."""
    today = _clock(ctx)().astimezone(JST).date()
    got = _store(ctx, db_url, device_id).counts(shelter_id, today)
    data = {"shelter": got.shelter_id, "present": got.present, "households": got.households,
            "by_age_band": got.by_age_band, "by_need": got.by_need,
            "unverified": got.unverified, "day_visits": got.day_visits}
    emit(as_json, data, lambda: [click.echo(f"{k}: {v}") for k, v in data.items()])


@shelter.command()
@common_options
@click.argument("kind", type=click.Choice(["roster", "counts", "safety"]))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the CSV here (default: standard output).")
@click.pass_context
def export(ctx: click.Context, db_url: str, device_id: str, as_json: bool, kind: str,
           out: Path | None) -> None:
    """CSV: the roster (staff), counts, or the consent-filtered 安否情報 list."""
    store = _store(ctx, db_url, device_id)
    today = _clock(ctx)().astimezone(JST).date()
    text = {"roster": lambda: roster_csv(store, today), "counts": lambda: counts_csv(store, today),
            "safety": lambda: safety_csv(store)}[kind]()
    if out is None:
        click.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    emit(as_json, {"written": str(out)}, lambda: click.echo(f"wrote {out}"))


@shelter.command()
@click.option("--device", "device_id", required=True)
@click.option("--out", "folder", required=True, type=click.Path(file_okay=False, path_type=Path))
def keygen(device_id: str, folder: Path) -> None:
    """A device's Ed25519 signing key (give the .pub.pem to headquarters)."""
    click.echo(f"public key: {new_device_key(folder, device_id)}")


@shelter.command()
@common_options
@click.option("--key", "key_file", required=True, type=click.Path(exists=True, path_type=Path),
              help="This device's private key (keygen).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the bundle file (USB).")
@click.option("--to", "url", metavar="URL", help="POST it to headquarters (…/api/bundle).")
@click.pass_context
def bundle(ctx: click.Context, db_url: str, device_id: str, as_json: bool, key_file: Path,
           out: Path | None, url: str | None) -> None:
    """Sign this device's records into a bundle: a file, or sent to headquarters."""
    if (out is None) == (url is None):
        raise click.UsageError("give --out FILE or --to URL")
    data = make_bundle(_store(ctx, db_url, device_id), load_device_key(key_file),
                       _clock(ctx)().isoformat())
    if out is not None:
        out.write_bytes(data)
        emit(as_json, {"written": str(out), "bytes": len(data)},
             lambda: click.echo(f"wrote {out} ({len(data)} bytes)"))
    else:
        answer = push(url or "", data)
        emit(as_json, answer, lambda: click.echo(f"headquarters merged: {answer}"))


@shelter.command("import")
@common_options
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--trust", "trust_dir", required=True,
              type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Folder of trusted device public keys (<device>.pub.pem).")
@click.pass_context
def import_(ctx: click.Context, db_url: str, device_id: str, as_json: bool,
            files: tuple[Path, ...], trust_dir: Path) -> None:
    """Merge bundle files (idempotent: importing one twice changes nothing)."""
    store = _store(ctx, db_url, device_id)
    trusted = load_trusted_devices(trust_dir)
    rows = []
    for path in files:
        merged = import_bundle(store, path.read_bytes(), trusted)
        rows.append({"file": str(path), "events_added": merged.events_added,
                     "rows_changed": merged.rows_changed})
    emit(as_json, {"imported": rows}, lambda: [click.echo(
        f"{r['file']}: {r['events_added']} new events, {r['rows_changed']} rows changed")
        for r in rows])


@shelter.command()
@common_options
@shelter_option
@reader_options
@cv_trust_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (loopback: only this machine).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--trust", "trust_dir", type=click.Path(file_okay=False, exists=True,
                                                      path_type=Path),
              help="Headquarters: accept bundles from these device keys at /api/bundle.")
@click.option("--shelter-name", metavar="NAME",
              help="Open the shelter with this name first (same as add-shelter).")
@click.pass_context
def serve(ctx: click.Context, db_url: str, device_id: str, as_json: bool, shelter_id: str,
          card_dir: Path | None, reader_spec: str | None, cv_trust_dir: Path, host: str,
          port: int, trust_dir: Path | None, shelter_name: str | None) -> None:
    """The staff page: read the card, confirm, check in and out, roster, counts, export."""
    from ...readers.registry import open_reader
    from .web import create_app

    if (card_dir is None) == (reader_spec is None):
        raise click.UsageError("say which card reader: --card DIR or --reader SPEC")
    store = _store(ctx, db_url, device_id)
    if shelter_name is not None:
        store.add_shelter(shelter_id, shelter_name, _clock(ctx)())
    if shelter_id not in {s.id for s in store.shelters()}:
        raise ShelterError(f"no shelter {shelter_id!r}: add it first (add-shelter)")
    desk = _desk(ctx, store, shelter_id, cv_trust_dir)
    spec = reader_spec or f"sim:{card_dir}"
    app = create_app(desk, lambda: open_reader(spec).connect(),
                     trusted_devices=load_trusted_devices(trust_dir) if trust_dir else None)
    click.echo(f"避難所受付: http://{host}:{port}/ (Ctrl-C to stop)")
    app.run(host=host, port=port, threaded=True)
