"""The apps' databases: every store test runs on SQLite and on a private PostgreSQL server
(one per test session and xdist worker: own data directory, port and socket, an unprivileged
user, stopped by PID at the end).

Without PostgreSQL installed the PostgreSQL half skips, saying what to install; with
``MYNACARD_REQUIRE_POSTGRES=1`` (set by ``.ci/run``) it fails instead.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mynacard.apps.common.pgserver import PostgresServer, missing_postgres

_names = itertools.count()


def postgres_unavailable(reason: str) -> None:
    if os.environ.get("MYNACARD_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"{reason} (MYNACARD_REQUIRE_POSTGRES=1: these tests must run)",
                    pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    missing = missing_postgres()
    if missing:
        postgres_unavailable(missing)
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def new_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], str]:
    """Makes empty databases of the parametrised kind (each call a new one)."""
    if request.param == "sqlite":
        return lambda: str(tmp_path / f"db-{next(_names)}.sqlite")
    server: PostgresServer = request.getfixturevalue("postgres")
    return lambda: server.create_database(f"t{os.getpid()}_{next(_names)}")


@pytest.fixture
def db_url(new_db_url: Callable[[], str]) -> str:
    return new_db_url()
