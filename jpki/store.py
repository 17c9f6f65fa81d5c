"""The PKI store: CA generations, issued certificates, revocations and CRL numbers in SQLite.

One file, shared by several processes: WAL journal, ``BEGIN IMMEDIATE`` for every write so that
two writers serialise instead of failing half-way, ``synchronous=FULL`` so that a committed
transaction survives a crash. Every lifecycle event is one transaction: a process killed in the
middle leaves the store as it was before the event.

Revocation bookkeeping for delta CRLs: every status change of a certificate records ``change_seq``,
the CRL number that the issuing generation will give its next CRL. A delta CRL on base CRL *B*
lists exactly the certificates whose ``change_seq`` is greater than *B*.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ..errors import MynacardError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ca_generation (
    kind TEXT NOT NULL, generation INTEGER NOT NULL,
    key_pem BLOB NOT NULL, cert_der BLOB NOT NULL,
    next_crl_number INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (kind, generation));
CREATE TABLE IF NOT EXISTS link_certificate (
    kind TEXT NOT NULL, issuer_generation INTEGER NOT NULL, subject_generation INTEGER NOT NULL,
    serial TEXT NOT NULL, cert_der BLOB NOT NULL,
    PRIMARY KEY (kind, issuer_generation, subject_generation));
CREATE TABLE IF NOT EXISTS responder (
    kind TEXT NOT NULL, generation INTEGER NOT NULL, key_pem BLOB NOT NULL, cert_der BLOB NOT NULL,
    PRIMARY KEY (kind, generation));
CREATE TABLE IF NOT EXISTS card (
    card_id TEXT PRIMARY KEY, resident_json TEXT NOT NULL, card_expiry TEXT NOT NULL,
    state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS certificate (
    kind TEXT NOT NULL, generation INTEGER NOT NULL, serial TEXT NOT NULL,
    role TEXT NOT NULL, card_id TEXT, cert_der BLOB NOT NULL,
    not_before TEXT NOT NULL, not_after TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'good',
    reason TEXT, revoked_at TEXT, invalidity_date TEXT, change_seq INTEGER,
    PRIMARY KEY (kind, generation, serial));
CREATE INDEX IF NOT EXISTS certificate_card ON certificate (card_id);
CREATE TABLE IF NOT EXISTS crl (
    kind TEXT NOT NULL, generation INTEGER NOT NULL, number INTEGER NOT NULL,
    scope TEXT NOT NULL, base_number INTEGER,
    this_update TEXT NOT NULL, next_update TEXT NOT NULL, der BLOB NOT NULL,
    PRIMARY KEY (kind, generation, number, scope));
"""


class StoreError(MynacardError):
    """The store is unreadable, or an operation contradicts its contents."""


class Status(Enum):
    GOOD = "good"
    HOLD = "hold"
    REVOKED = "revoked"
    RELEASED = "released"
    """Was on hold, hold lifted: listed once more, as removeFromCRL, in the next delta CRL."""
    EXPIRED = "expired"


class Role(Enum):
    AUTH = "auth"
    SIGN = "sign"
    LINK = "link"
    """A self-issued rollover (link) certificate; listed on ARLs."""


@dataclass(frozen=True, slots=True)
class CertificateRecord:
    kind: str
    generation: int
    serial: int
    role: Role
    card_id: str | None
    certificate: x509.Certificate
    status: Status
    reason: x509.ReasonFlags | None
    revoked_at: dt.datetime | None
    invalidity_date: dt.datetime | None
    change_seq: int | None

    @property
    def not_after(self) -> dt.datetime:
        return self.certificate.not_valid_after_utc


def _ts(when: dt.datetime | None) -> str | None:
    if when is None:
        return None
    if when.tzinfo is None:
        raise StoreError("timestamps must be timezone-aware")
    return when.astimezone(dt.UTC).isoformat()


def _from_ts(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text)


def serial_key(serial: int) -> str:
    """Serials as fixed-width hex so that SQL ordering is numeric ordering (≤ 20 octets)."""
    return f"{serial:040x}"


class PKIStore:
    """An open SQLite PKI store (``:memory:`` for a throwaway one)."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0,
                                       check_same_thread=False)
            self._db.execute("PRAGMA busy_timeout = 30000")
            if self.path != ":memory:":
                self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.execute("PRAGMA foreign_keys = ON")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the PKI store {self.path}: {exc}") from exc
        self._create_schema()

    def _create_schema(self) -> None:
        try:
            with self.transaction() as db:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a PKI store: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic, serialised write transaction (readers are never blocked under WAL)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        cursor = self._db.execute(sql, params)
        return cursor.fetchall()

    # meta ------------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, db: sqlite3.Connection, key: str, value: str) -> None:
        db.execute("INSERT INTO meta(key, value) VALUES (?, ?) "
                   "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    # certificates ----------------------------------------------------------------------------

    def add_certificate(self, db: sqlite3.Connection, kind: str, generation: int, role: Role,
                        card_id: str | None, cert: x509.Certificate) -> None:
        db.execute(
            "INSERT INTO certificate(kind, generation, serial, role, card_id, cert_der, "
            "not_before, not_after) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (kind, generation, serial_key(cert.serial_number), role.value, card_id,
             cert.public_bytes(Encoding.DER), _ts(cert.not_valid_before_utc),
             _ts(cert.not_valid_after_utc)))

    def set_status(self, db: sqlite3.Connection, record: CertificateRecord, status: Status,
                   reason: x509.ReasonFlags | None, when: dt.datetime | None,
                   invalidity_date: dt.datetime | None = None) -> None:
        seq = db.execute("SELECT next_crl_number FROM ca_generation WHERE kind = ? AND "
                         "generation = ?", (record.kind, record.generation)).fetchone()[0]
        db.execute(
            "UPDATE certificate SET status = ?, reason = ?, revoked_at = ?, invalidity_date = ?, "
            "change_seq = ? WHERE kind = ? AND generation = ? AND serial = ?",
            (status.value, reason.value if reason else None, _ts(when), _ts(invalidity_date),
             seq, record.kind, record.generation, serial_key(record.serial)))

    def certificates(self, where: str = "1", params: tuple = ()) -> list[CertificateRecord]:
        rows = self.query(
            "SELECT kind, generation, serial, role, card_id, cert_der, status, reason, "
            f"revoked_at, invalidity_date, change_seq FROM certificate WHERE {where} "
            "ORDER BY kind, generation, serial", params)
        return [CertificateRecord(
            kind=r[0], generation=r[1], serial=int(r[2], 16), role=Role(r[3]), card_id=r[4],
            certificate=x509.load_der_x509_certificate(r[5]), status=Status(r[6]),
            reason=x509.ReasonFlags(r[7]) if r[7] else None, revoked_at=_from_ts(r[8]),
            invalidity_date=_from_ts(r[9]), change_seq=r[10]) for r in rows]

    def certificate(self, serial: int, kind: str | None = None) -> CertificateRecord:
        where, params = "serial = ?", (serial_key(serial),)
        if kind is not None:
            where, params = where + " AND kind = ?", (*params, kind)
        found = self.certificates(where, params)
        if len(found) != 1:
            raise StoreError(f"no unique certificate with serial {serial:#x}"
                             + (f" issued by the {kind} CA" if kind else ""))
        return found[0]

    def card_certificates(self, card_id: str) -> list[CertificateRecord]:
        return self.certificates("card_id = ?", (card_id,))

    # CRL numbers -----------------------------------------------------------------------------

    def take_crl_number(self, db: sqlite3.Connection, kind: str, generation: int) -> int:
        number = db.execute("SELECT next_crl_number FROM ca_generation WHERE kind = ? AND "
                            "generation = ?", (kind, generation)).fetchone()
        if number is None:
            raise StoreError(f"no {kind} CA generation {generation}")
        db.execute("UPDATE ca_generation SET next_crl_number = next_crl_number + 1 "
                   "WHERE kind = ? AND generation = ?", (kind, generation))
        return number[0]

    def record_crl(self, db: sqlite3.Connection, kind: str, generation: int, number: int,
                   scope: str, base_number: int | None, crl: x509.CertificateRevocationList,
                   der: bytes) -> None:
        db.execute("INSERT INTO crl(kind, generation, number, scope, base_number, this_update, "
                   "next_update, der) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   (kind, generation, number, scope, base_number, _ts(crl.last_update_utc),
                    _ts(crl.next_update_utc), der))

    def latest_crl_number(self, kind: str, generation: int, scope: str) -> int | None:
        rows = self.query("SELECT MAX(number) FROM crl WHERE kind = ? AND generation = ? AND "
                          "scope = ?", (kind, generation, scope))
        return rows[0][0]
