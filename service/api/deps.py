"""FastAPI dependencies: the open installation, a session per request, auth."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from sqlalchemy.orm import Session

from service.domain import tokens
from service.runtime import Runtime

__all__ = ["Caller", "SessionDep", "get_hwnas", "get_session", "reader", "writer"]


def get_hwnas(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def get_session(rt: Annotated[Runtime, Depends(get_hwnas)]) -> Iterator[Session]:
    """One transaction per request: committed if the handler returns, rolled back if it raises."""
    with rt.session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


class Caller:
    """Who is calling: the token's name, or "anonymous" when auth is off."""

    def __init__(self, name: str, scopes: list[str]) -> None:
        self.name = name
        self.scopes = scopes


def _caller(
    rt: Annotated[Runtime, Depends(get_hwnas)],
    session: SessionDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Caller:
    if authorization is None:
        if rt.settings.require_auth:
            raise HTTPException(401, "missing Authorization: Bearer <token> header")
        return Caller("anonymous", ["read", "write"])
    scheme, _, secret = authorization.partition(" ")
    if scheme.lower() != "bearer" or not secret:
        raise HTTPException(401, "Authorization header must be 'Bearer <token>'")
    token = tokens.verify_token(session, secret.strip())
    if token is None:
        raise HTTPException(401, "unknown or revoked token")
    return Caller(token.name, list(token.scopes))


def reader(caller: Annotated[Caller, Depends(_caller)]) -> Caller:
    if "read" not in caller.scopes:
        raise HTTPException(403, f"token {caller.name!r} may not read")
    return caller


def writer(caller: Annotated[Caller, Depends(_caller)]) -> Caller:
    if "write" not in caller.scopes:
        raise HTTPException(403, f"token {caller.name!r} is read-only")
    return caller
