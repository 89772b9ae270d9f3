"""API tokens. The secret is shown once at creation; only its SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db import ApiToken, utcnow
from service.domain.errors import NotFoundError
from service.domain.names import add_named, check_name

__all__ = ["create_token", "list_tokens", "revoke_token", "verify_token"]

_PREFIX = "hwnas_"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(
    session: Session, name: str, scopes: Sequence[str] = ("read", "write")
) -> tuple[ApiToken, str]:
    """Create a token; returns the row and the secret (never stored in clear)."""
    check_name("token", name)
    secret = _PREFIX + secrets.token_urlsafe(32)
    row = add_named(
        session, "token", ApiToken(name=name, token_hash=_digest(secret), scopes=list(scopes))
    )
    return row, secret


def verify_token(session: Session, secret: str) -> ApiToken | None:
    """The live token for ``secret``, or None."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(secret)))
    if row is None or row.revoked_at is not None:
        return None
    row.last_used_at = utcnow()
    return row


def revoke_token(session: Session, name: str) -> ApiToken:
    row = session.scalar(select(ApiToken).where(ApiToken.name == name))
    if row is None:
        raise NotFoundError(f"token {name!r} does not exist")
    row.revoked_at = row.revoked_at or utcnow()
    return row


def list_tokens(session: Session) -> Sequence[ApiToken]:
    return session.scalars(select(ApiToken).order_by(ApiToken.name)).all()
