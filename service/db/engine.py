"""Engines and sessions for the embedded (SQLite) and server (PostgreSQL) databases.

One engine per process (connection pools are not fork-safe). SQLite gets WAL
(readers never block the writer), a busy timeout (writers wait for each other
instead of failing with "database is locked"), enforced foreign keys, and
``BEGIN IMMEDIATE`` for transactions that may write: with deferred transactions
a reader that later writes can be refused at once (SQLITE_BUSY, no waiting)
when another writer committed in between; taking the write lock up front lets
the busy timeout work. Transactions that only read (sessions bound to
:func:`read_only`'s engine) start with a plain deferred ``BEGIN``: under WAL
they see a consistent snapshot and never wait for, nor hold up, a writer.
Server databases get ``pool_pre_ping`` because idle PostgreSQL connections are
dropped by servers and proxies, and no parallel query plans: every statement
hwnas runs is a short, index-bounded read or write, and PostgreSQL's row
estimates for a latency range within one supernet and device are far off, so
it would start parallel workers (about 10 ms) for a plan that reads 3 rows,
or JIT-compile one (about 18 ms) for a walk that reads a few hundred.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["READ_ONLY_OPTION", "make_engine", "make_session_factory", "read_only"]

#: Execution option marking an engine (and its connections) as read-only.
READ_ONLY_OPTION = "hwnas_read_only"


def read_only(engine: Engine) -> Engine:
    """A view of ``engine`` (same pool) whose transactions only read.

    On SQLite they begin deferred, so they take no write lock; writing in one
    is a bug (it would fail with SQLITE_BUSY under contention instead of
    waiting)."""
    return engine.execution_options(**{READ_ONLY_OPTION: True})


def make_engine(url: str, *, busy_timeout_s: float = 30.0, pool_size: int = 5) -> Engine:
    """Create the engine for ``url``; creates the SQLite file's directory if needed."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database, busy_timeout_s)
    return _server_engine(url, pool_size)


def _server_engine(url: str, pool_size: int) -> Engine:
    engine = create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size)
    if engine.dialect.name == "postgresql":

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            with dbapi_conn.cursor() as cursor:
                cursor.execute("SET max_parallel_workers_per_gather = 0")
                cursor.execute("SET jit = off")
            dbapi_conn.commit()

    return engine


def _sqlite_engine(url: str, database: str | None, busy_timeout_s: float) -> Engine:
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": busy_timeout_s})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below own transaction start.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        reading = conn.get_execution_options().get(READ_ONLY_OPTION, False)
        conn.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")

    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    # expire_on_commit=False: objects stay readable after commit, which the CLI
    # and API rely on when they render what they just wrote.
    return sessionmaker(bind=engine, expire_on_commit=False)
