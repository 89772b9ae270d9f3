"""The runtime handle: settings + engine + session factory, opened once per process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.db import SchemaStatus, ensure_schema, make_engine, make_session_factory
from service.settings import Settings

__all__ = ["Runtime"]


@dataclass
class Runtime:
    """An open hwnas installation. Create with :meth:`open`; close when done.

    The embedded database is created (and stamped at the newest schema)
    automatically on first use; a server database must be migrated explicitly
    with ``hwnas db upgrade`` (see ``service.db.migrate.ensure_schema``).
    """

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    schema: SchemaStatus | None = field(default=None)

    @classmethod
    def open(cls, settings: Settings, *, check_schema: bool = True) -> Runtime:
        settings.home.mkdir(parents=True, exist_ok=True)
        engine = make_engine(
            settings.resolved_database_url,
            busy_timeout_s=settings.sqlite_busy_timeout_s,
            pool_size=settings.db_pool_size,
        )
        schema = None
        if check_schema:
            try:
                schema = ensure_schema(engine, auto_create=settings.is_embedded)
            except Exception:
                engine.dispose()
                raise
        return cls(settings, engine, make_session_factory(engine), schema)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with self.sessions() as session, session.begin():
            yield session

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
