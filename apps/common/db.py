"""The apps' database: SQLite (WAL) embedded by default, PostgreSQL when counters or branches
share one database, chosen by a URL. SQLAlchemy Core speaks both dialects and Alembic runs each
app's own migrations, so no app writes a dialect switch.

* ``sqlite:///PATH`` or a bare path: one file, WAL journal, a busy timeout, and every write
  transaction opened with ``BEGIN IMMEDIATE`` so two writers serialise instead of failing at
  commit.
* ``postgresql://…`` (driven by psycopg 3): every transaction SERIALIZABLE; a transaction the
  server aborts as a serialisation failure or a deadlock is re-run, a bounded number of times.

Callers hand a function to :meth:`Database.transact`, never SQL: each app's ``store.py`` is the
only place that builds statements.
"""

from __future__ import annotations

import datetime as dt
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, exc, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from ...errors import MynacardError

T = TypeVar("T")

BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite writer waits for another (a counter holds the lock for milliseconds)."""
RETRIES = 20
"""Re-runs of a PostgreSQL transaction aborted by a conflicting one before giving up."""
RETRY_SQLSTATES = {"40001", "40P01", "23505"}
"""serialization_failure and deadlock_detected: the server asks us to try again. Also
unique_violation: every store checks a key before inserting it, so a duplicate can only come
from a concurrent transaction that won the race, and the re-run sees its row."""


class DatabaseError(MynacardError):
    """The apps' database cannot be opened, migrated or written."""


def database_url(spec: str | Path) -> URL:
    """``sqlite:///path``, a bare path, or ``postgresql://…`` → the URL SQLAlchemy opens."""
    text_spec = str(spec)
    if "://" not in text_spec:
        return URL.create("sqlite", database=str(Path(text_spec).expanduser()))
    try:
        url = make_url(text_spec)
    except exc.ArgumentError as error:
        raise DatabaseError(f"not a database URL: {text_spec!r}") from error
    if url.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        return url.set(drivername="postgresql+psycopg")
    if url.drivername == "sqlite":
        if not url.database or url.database == ":memory:":
            # Each connection would get its own empty in-memory database.
            raise DatabaseError("an app database must be a file: sqlite:///PATH")
        return url
    raise DatabaseError(f"unsupported database {url.drivername!r}: use sqlite:///PATH or "
                        "postgresql://…")


def _sqlite_engine(url: URL) -> Engine:
    Path(url.database or "").expanduser().parent.mkdir(parents=True, exist_ok=True)
    # NullPool: a file connection is cheap, and no connection outlives its transaction, so
    # a forked process (the concurrency tests, a pre-forking server) never inherits one.
    engine = create_engine(url, poolclass=NullPool)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # noqa: ANN001 - SQLAlchemy's hook
        # The driver's own transaction handling is off so that "begin" below decides.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Take the write lock up front: two counters reading then writing the same item
        # serialise here instead of one failing with SQLITE_BUSY at its first write.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _postgresql_engine(url: URL) -> Engine:
    return create_engine(url, poolclass=NullPool, isolation_level="SERIALIZABLE")


def _retryable(error: exc.DBAPIError) -> bool:
    return getattr(error.orig, "sqlstate", None) in RETRY_SQLSTATES


class Database:
    """One app database (SQLite file or PostgreSQL server); see the module docstring."""

    def __init__(self, spec: str | Path) -> None:
        self.url = database_url(spec)
        self.dialect = "sqlite" if self.url.drivername == "sqlite" else "postgresql"
        try:
            self.engine = (_sqlite_engine if self.dialect == "sqlite"
                           else _postgresql_engine)(self.url)
        except (exc.SQLAlchemyError, OSError) as error:
            raise DatabaseError(f"cannot open {self.display}: {error}") from error

    @property
    def display(self) -> str:
        """The URL without its password, for messages."""
        return self.url.render_as_string(hide_password=True)

    def transact(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one serialised transaction and commit; re-run it if PostgreSQL
        aborts it for a conflict. ``work`` must therefore do nothing but database work."""
        for attempt in range(RETRIES + 1):
            try:
                with self.engine.begin() as connection:
                    return work(connection)
            except exc.DBAPIError as error:
                if self.dialect == "postgresql" and _retryable(error) and attempt < RETRIES:
                    # Back off a little, growing, so the two contenders do not collide again.
                    time.sleep(0.002 * (attempt + 1))
                    continue
                raise DatabaseError(f"{self.display}: {error.orig or error}") from error
        raise AssertionError("unreachable: the last attempt returns or raises")

    def migrate(self, script_location: Path, version_table: str) -> None:
        """Bring the app's schema to its newest Alembic revision, holding a lock so that
        processes opening a new database together migrate it once."""
        config = Config()
        config.set_main_option("script_location", str(script_location))
        config.attributes["version_table"] = version_table

        def upgrade(connection: Connection) -> None:
            if self.dialect == "postgresql":
                # Serialises concurrent first opens (SQLite's BEGIN IMMEDIATE already does).
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                   {"key": zlib.crc32(version_table.encode())})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

        try:
            self.transact(upgrade)
        except exc.SQLAlchemyError as error:
            raise DatabaseError(f"cannot migrate {self.display}: {error}") from error

    def dispose(self) -> None:
        self.engine.dispose()


def utc(value: dt.datetime) -> dt.datetime:
    """A timestamp read back from either database as an aware UTC datetime (SQLite keeps
    naive UTC, PostgreSQL returns the session's zone)."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def naive_utc(value: dt.datetime) -> dt.datetime:
    """What we write: UTC without a zone, so both dialects store and compare the same value."""
    return value.astimezone(dt.UTC).replace(tzinfo=None)
