"""API tokens. The secret is shown once at creation; only its SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db import ApiToken, utcnow
from service.domain.errors import NotFoundError
from service.domain.names import add_named, check_name

__all__ = [
    "SCOPES",
    "create_token",
    "list_tokens",
    "record_use",
    "revoke_token",
    "use_is_stale",
    "verify_token",
]

#: read: GET anything the token owns (and bundled rows); write: create, change
#: and delete its own rows, start jobs; admin: see and change every owner's rows.
SCOPES = ("read", "write", "admin")
#: A token's ``last_used_at`` is refreshed at most this often: recording every
#: use would turn each read into a write.
LAST_USE_RESOLUTION = timedelta(minutes=1)

_PREFIX = "hwnas_"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(
    session: Session, name: str, scopes: Sequence[str] = ("read", "write")
) -> tuple[ApiToken, str]:
    """Create a token; returns the row and the secret (never stored in clear)."""
    check_name("token", name)
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValueError(f"token scopes must be among {list(SCOPES)}, got {list(scopes)}")
    secret = _PREFIX + secrets.token_urlsafe(32)
    row = add_named(
        session, "token", ApiToken(name=name, token_hash=_digest(secret), scopes=list(scopes))
    )
    return row, secret


def verify_token(session: Session, secret: str) -> ApiToken | None:
    """The live token for ``secret``, or None. Reads only (see :func:`record_use`)."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(secret)))
    if row is None or row.revoked_at is not None:
        return None
    return row


def use_is_stale(row: ApiToken, now: datetime | None = None) -> bool:
    """True when ``row``'s recorded last use is older than the resolution."""
    now = now or utcnow()
    return row.last_used_at is None or now - row.last_used_at >= LAST_USE_RESOLUTION


def record_use(session: Session, token_id: int, now: datetime | None = None) -> None:
    """Set the token's ``last_used_at`` (call in a transaction of its own)."""
    row = session.get(ApiToken, token_id)
    if row is not None:
        row.last_used_at = now or utcnow()


def revoke_token(session: Session, name: str) -> ApiToken:
    row = session.scalar(select(ApiToken).where(ApiToken.name == name))
    if row is None:
        raise NotFoundError(f"token {name!r} does not exist")
    row.revoked_at = row.revoked_at or utcnow()
    return row


def list_tokens(session: Session) -> Sequence[ApiToken]:
    return session.scalars(select(ApiToken).order_by(ApiToken.name)).all()
