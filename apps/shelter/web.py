"""The staff page (``mynacard app shelter serve``): one reception desk of one shelter.

Flask (Pallets; Werkzeug + Jinja2) with server-rendered forms: no JavaScript at all, so no
build step and nothing that breaks on an old tablet; card reads block, and Flask's plain
synchronous views match that. Facts read from a card stay on the server (``pending``) between
reading and confirming, so a form can never turn an unverified person into a verified one.
The page binds to loopback unless told otherwise (``serve --host``).
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, abort, redirect, render_template, request, url_for

from ...errors import MynacardError
from ...readers.base import CardConnection
from . import card
from .export import JST, counts_csv, roster_csv, safety_csv
from .model import CONSENT_FIELDS, NEEDS, SEX_LABELS, Facts
from .service import ShelterDesk
from .sync import import_bundle

ERAS = ("令和", "平成", "昭和", "大正", "明治")


def create_app(desk: ShelterDesk, connect: Callable[[], CardConnection], *,
               trusted_devices: dict[str, Any] | None = None) -> Flask:
    """``connect`` opens the reader's card for one read; ``trusted_devices`` (device id →
    Ed25519 public key) turns on ``POST /api/bundle`` for headquarters."""
    app = Flask(__name__)
    pending: dict[str, tuple[Facts, str | None]] = {}
    lock = threading.Lock()   # one card reader, one store: requests take turns

    def shelter_name() -> str:
        return next((s.name for s in desk.store.shelters() if s.id == desk.shelter_id),
                    desk.shelter_id)

    def page(template: str, **values: Any) -> str:
        return render_template(template, shelter=shelter_name(), **values)

    def household_arg() -> str | None:
        return request.values.get("household") or None

    def read_card(read: Callable[[CardConnection], tuple[Facts, str | None]]) -> str:
        with lock:
            connection = connect()
            try:
                facts, number = read(connection)
            finally:
                connection.disconnect()
        token = secrets.token_urlsafe(16)
        pending[token] = (facts, number)
        return token

    @app.get("/")
    def home() -> str:
        counts = desk.store.counts(desk.shelter_id, desk.today())
        return page("home.html", counts=counts)

    @app.route("/read", methods=["GET", "POST"])
    def read() -> Any:
        household = household_arg()
        if request.method == "GET":
            desk.guard.next_card()
            return page("read.html", eras=ERAS, household=household, form={}, error=None)
        form = request.form
        try:
            code = desk.code_b_from_face(form.get("era", ""), _int(form, "year", "年"),
                                         _int(form, "month", "月"), _int(form, "day", "日"),
                                         _int(form, "expiry", "有効期限の年"),
                                         form.get("code", "").strip())
            token = read_card(lambda conn: (desk.read_code_b(conn, code), None))
        except MynacardError as exc:
            return page("read.html", eras=ERAS, household=household, form=form,
                        error=str(exc)), 422
        return redirect(url_for("confirm", token=token, household=household))

    @app.route("/read-pin", methods=["GET", "POST"])
    def read_pin() -> Any:
        household = household_arg()
        if request.method == "GET":
            return page("pin.html", household=household, error=None)
        try:
            token = read_card(lambda conn: desk.read_pin(conn, request.form.get("pin", "")))
        except MynacardError as exc:
            return page("pin.html", household=household, error=str(exc)), 422
        return redirect(url_for("confirm", token=token, household=household))

    @app.route("/manual", methods=["GET", "POST"])
    def manual() -> Any:
        household = household_arg()
        if request.method == "GET":
            return page("manual.html", household=household, form={}, error=None)
        form = request.form
        try:
            birth = (dt.date.fromisoformat(form["birth"]) if form.get("birth") else None)
            facts = card.manual_facts(form.get("name", ""), form.get("address", ""), birth,
                                      form.get("sex", "0"))
        except (MynacardError, ValueError) as exc:
            return page("manual.html", household=household, form=form, error=str(exc)), 422
        token = secrets.token_urlsafe(16)
        pending[token] = (facts, None)
        return redirect(url_for("confirm", token=token, household=household))

    @app.get("/confirm/<token>")
    def confirm(token: str) -> str:
        facts, _ = pending.get(token) or abort(404)
        household = household_arg()
        members = desk.store.household(household).members if household else ()
        return page("confirm.html", token=token, facts=facts, household=household,
                    members=members, needs=NEEDS, consent=CONSENT_FIELDS, sex=SEX_LABELS)

    @app.post("/checkin/<token>")
    def check_in(token: str) -> Any:
        facts, number = pending.get(token) or abort(404)
        form = request.form
        try:
            result = desk.check_in(facts, household_id=form.get("household") or None,
                                   name_kana=form.get("kana", "").strip(),
                                   address_current=form.get("address_current", "").strip(),
                                   needs=tuple(form.getlist("needs")),
                                   consent=tuple(form.getlist("consent")), my_number=number,
                                   staff=form.get("staff", ""))
        except MynacardError as exc:
            return page("message.html", error=str(exc)), 422
        pending.pop(token, None)
        household = desk.store.household(result.person.household_id)
        return page("done.html", result=result, household=household,
                    since=(result.already_since.astimezone(JST).strftime("%H:%M")
                           if result.already_since else None))

    @app.get("/roster")
    def roster() -> str:
        return page("roster.html", rows=desk.store.roster(desk.shelter_id), needs=NEEDS)

    @app.post("/checkout/<person_id>")
    def check_out(person_id: str) -> Any:
        try:
            desk.check_out(person_id)
        except MynacardError as exc:
            return page("message.html", error=str(exc)), 422
        return redirect(url_for("roster"))

    @app.get("/counts")
    def counts() -> str:
        return page("counts.html", counts=desk.store.counts(desk.shelter_id, desk.today()),
                    needs=NEEDS)

    exports = {"roster": lambda: roster_csv(desk.store, desk.today(), desk.shelter_id),
               "counts": lambda: counts_csv(desk.store, desk.today()),
               "safety": lambda: safety_csv(desk.store)}

    @app.get("/export")
    def export() -> str:
        return page("export.html", previews={name: make() for name, make in exports.items()})

    @app.get("/export/<name>.csv")
    def export_file(name: str) -> Response:
        make = exports.get(name) or abort(404)
        # UTF-8 with BOM: what Excel on a municipal PC opens without garbling.
        return Response("\ufeff" + make(), mimetype="text/csv", headers={
            "Content-Disposition": f"attachment; filename={desk.shelter_id}-{name}.csv"})

    @app.post("/api/bundle")
    def receive_bundle() -> Any:
        if trusted_devices is None:
            abort(404)
        try:
            with lock:
                merged = import_bundle(desk.store, request.get_data(), trusted_devices)
        except MynacardError as exc:
            return {"error": str(exc)}, 400
        return {"events_added": merged.events_added, "rows_changed": merged.rows_changed}

    return app


def _int(form: Any, field: str, label: str) -> int:
    value = form.get(field, "").strip()
    if not value.isascii() or not value.isdigit():
        raise card.CodeBFormatError(f"{label}を数字で入力してください")
    return int(value)
