"""Engines for the store: the URL comes from ``GRID_DATABASE_URL``, else an SQLite file.

SQLite is set up for one writer and many readers: WAL journal, ``synchronous=NORMAL`` (a killed
process never leaves half a transaction; only an OS crash may lose the last commits), foreign keys
on, and real ``BEGIN`` statements so that a batch is one transaction (pysqlite would otherwise open
transactions lazily and commit DDL implicitly). Write transactions use ``BEGIN IMMEDIATE`` so that
two writers queue on the busy timeout instead of deadlocking on a lock upgrade. A new database
file is created readable by its owner only (0600).

PostgreSQL connections are pre-pinged when taken from the pool (a connection the server dropped
during an outage or restart is replaced instead of failing the request) and give up connecting
after ``PG_CONNECT_TIMEOUT_S``, so that a database that went away answers fast instead of hanging.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import Executable

DEFAULT_URL = "sqlite:///quartiere.sqlite"
ENV_VAR = "GRID_DATABASE_URL"
SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_CACHE_KIB = 65_536
PG_CONNECT_TIMEOUT_S = 5


def database_url(url: str | None = None) -> str:
    """The URL to use: the argument, else ``$GRID_DATABASE_URL``, else ``./quartiere.sqlite``."""
    return url or os.environ.get(ENV_VAR) or DEFAULT_URL


def make_engine(url: str | None = None, schema: str | None = None, **kwargs: Any) -> Engine:
    """Create an engine for `url` (see :func:`database_url`).

    `schema` (PostgreSQL only) puts every table in that schema via the connection's search_path;
    the tests use it for a scratch schema per test.
    """
    url = database_url(url)
    if url.startswith("sqlite"):
        _create_private(sa.engine.make_url(url).database)
        engine = sa.create_engine(url, **kwargs)
        _setup_sqlite(engine)
        return engine
    connect_args = dict(kwargs.pop("connect_args", {}))
    connect_args.setdefault("connect_timeout", PG_CONNECT_TIMEOUT_S)
    kwargs.setdefault("pool_pre_ping", True)
    if schema is not None:
        connect_args["options"] = f"-c search_path={schema}"
    return sa.create_engine(url, connect_args=connect_args, **kwargs)


def _create_private(database: str | None) -> None:
    """Create the SQLite file `database` readable by its owner only (0600) if it does not exist yet
    (SQLite gives its -wal and -shm files the same mode); in-memory databases are left alone."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    with contextlib.suppress(FileExistsError, FileNotFoundError):  # no such directory: SQLite reports it
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _setup_sqlite(engine: Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")  # bulk inserts thrash the 2 MB default
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One atomic write transaction: everything inside commits together or not at all."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            yield conn


def dbapi_connection(conn: Connection) -> Any:
    """The driver connection under `conn` (psycopg or sqlite3), in the same transaction."""
    raw = conn.connection.dbapi_connection
    if raw is None:
        raise RuntimeError("connection is closed")
    return raw


def driver_rows(conn: Connection, query: Executable) -> list[tuple[Any, ...]]:
    """The rows of `query` as the driver gives them: plain tuples, without a SQLAlchemy Row and the
    column types' processing per row (which cost about as much as the query for the ~120 k rows
    of a forecast read). Only for columns whose values need none: numbers, texts, and instants
    read with :func:`grid.store.schema.stored_time` or converted by the caller (SQLite gives
    epoch seconds, PostgreSQL datetimes)."""
    result = conn.execute(query)
    try:
        return list(result.cursor.fetchall()) if result.returns_rows else []
    finally:
        result.close()
