"""FastAPI dependencies: the open installation, sessions per request, auth.

Locking (why there are two session dependencies): on SQLite a session that may
write holds the database's write lock from its first statement to its end, so
a request must never hold one while its handler opens a session of its own
(it would wait on itself until the busy timeout). Hence:

* authentication reads the token in a short read-only session of its own;
* ``ReadSessionDep`` (every GET) never takes the write lock;
* ``WriteSessionDep`` is for handlers that write through the request's session
  and open no other; handlers that run orchestration code (which opens its own
  sessions) take neither.

A token's last use is recorded at most once a minute, in a short transaction
of its own committed before the handler runs (never inside the request's
transaction), so that reading stays reading. (Not as a background task: those
run while a write request's session still holds the lock.)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Header, HTTPException, Request
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from service.domain import tokens
from service.domain.owners import LOCAL, Scope
from service.domain.views import JobOut, SupernetOut
from service.runtime import Runtime

__all__ = [
    "Caller",
    "ReadSessionDep",
    "WriteSessionDep",
    "admin",
    "get_hwnas",
    "reader",
    "writer",
]

log = logging.getLogger("hwnas.api")

_Shown = TypeVar("_Shown", JobOut, SupernetOut)


def get_hwnas(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def _read_session(rt: Annotated[Runtime, Depends(get_hwnas)]) -> Iterator[Session]:
    with rt.read_session() as session:
        yield session


def _write_session(rt: Annotated[Runtime, Depends(get_hwnas)]) -> Iterator[Session]:
    """One transaction: committed if the handler returns, rolled back if it raises."""
    with rt.session() as session:
        yield session


ReadSessionDep = Annotated[Session, Depends(_read_session)]
WriteSessionDep = Annotated[Session, Depends(_write_session)]


@dataclass(frozen=True)
class Caller:
    """Who is calling: a token's name and scopes, or ``local`` when auth is off."""

    name: str
    scopes: tuple[str, ...]

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes

    @property
    def scope(self) -> Scope:
        """What this caller may see and change (see :mod:`service.domain.owners`)."""
        return Scope(owner=self.name, sees_all=self.is_admin)

    def shown(self, out: _Shown) -> _Shown:
        """``out`` as this caller may see it: admins get tracebacks and paths."""
        return out if self.is_admin else out.redacted()


def _record_use(rt: Runtime, token_id: int) -> None:
    try:
        with rt.session() as s:
            tokens.record_use(s, token_id)
    except SQLAlchemyError:
        # Bookkeeping only: a busy database must not turn into a failed request.
        log.warning("could not record the last use of token %s", token_id, exc_info=True)


def _caller(
    request: Request,
    rt: Annotated[Runtime, Depends(get_hwnas)],
    authorization: Annotated[str | None, Header()] = None,
) -> Caller:
    caller = _authenticate(rt, authorization)
    request.state.caller = caller  # the 500 handler shows admins the traceback
    return caller


def _authenticate(rt: Runtime, authorization: str | None) -> Caller:
    if not rt.settings.require_auth:
        # Auth off: a single user; everything belongs to `local`.
        return Caller(LOCAL, ("read", "write", "admin"))
    if authorization is None:
        raise HTTPException(401, "missing Authorization: Bearer <token> header")
    scheme, _, secret = authorization.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise HTTPException(401, "Authorization header must be 'Bearer <token>'")
    with rt.read_session() as s:
        token = tokens.verify_token(s, secret.strip())
        if token is None:
            raise HTTPException(401, "unknown or revoked token")
        caller = Caller(token.name, tuple(token.scopes))
        stale = tokens.use_is_stale(token)
    if stale:
        _record_use(rt, token.id)
    return caller


def reader(caller: Annotated[Caller, Depends(_caller)]) -> Caller:
    if "read" not in caller.scopes:
        raise HTTPException(403, f"token {caller.name!r} may not read")
    return caller


def writer(caller: Annotated[Caller, Depends(_caller)]) -> Caller:
    if "write" not in caller.scopes:
        raise HTTPException(403, f"token {caller.name!r} is read-only")
    return caller


def admin(caller: Annotated[Caller, Depends(_caller)]) -> Caller:
    if not caller.is_admin:
        raise HTTPException(403, f"token {caller.name!r} is not an admin token")
    return caller
