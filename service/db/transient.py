"""Telling a lost or busy database apart from a bug, and retrying the former.

A PostgreSQL server restarting or failing over, a proxy dropping idle
connections, or ``pg_terminate_backend`` ends connections in the middle of a
transaction: the statement fails with an ``OperationalError`` (SQLAlchemy
marks the connection invalidated), possibly wrapped by Optuna as a
``StorageInternalError``. Nothing was committed by the failed transaction, so
the work can be redone on a fresh connection. SQLite's "database is locked"
(busy timeout exceeded) is transient in the same way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError

__all__ = ["is_transient", "retrying"]

log = logging.getLogger(__name__)

T = TypeVar("T")


def is_transient(exc: BaseException | None) -> bool:
    """True when ``exc`` (or what caused it) is a lost connection or a busy
    database rather than a bug or bad data."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return True
        if isinstance(exc, OperationalError):
            return True
        # The driver's own error, when it escaped SQLAlchemy's wrapping.
        if type(exc).__name__ in {"OperationalError", "AdminShutdown", "InterfaceError"} and (
            type(exc).__module__.startswith(("psycopg", "sqlite3"))
        ):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def retrying(
    action: Callable[[], T], *, what: str, attempts: int = 8, first_delay_s: float = 0.1
) -> T:
    """Run ``action`` (one whole transaction) again after transient failures,
    with exponential backoff (0.1 s, 0.2 s, ... about 25 s in all)."""
    delay = first_delay_s
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as exc:
            if attempt == attempts or not is_transient(exc):
                raise
            log.warning("%s failed (%s); retrying in %.1f s", what, type(exc).__name__, delay)
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")
