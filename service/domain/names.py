"""Validation of user-chosen names (devices, supernets, tokens)."""

from __future__ import annotations

import difflib
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.domain.errors import ConflictError, NotFoundError

__all__ = ["add_named", "check_name", "not_found"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_name(kind: str, name: str) -> str:
    """Return ``name`` if it is a valid identifier for ``kind``, else raise ``ValueError``."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"{kind} name {name!r} is invalid: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def add_named(session: Session, kind: str, row: Any) -> Any:
    """Insert ``row`` (a model with a unique ``name``) or raise a ConflictError.

    The check up front gives the common case a clear message; the unique
    constraint settles two inserts racing on one name.
    """
    model = type(row)
    if session.scalar(select(model.id).where(model.name == row.name)) is not None:
        raise ConflictError(f"{kind} {row.name!r} already exists")
    session.add(row)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise ConflictError(f"{kind} {row.name!r} already exists") from None
    return row


def not_found(
    session: Session, model: Any, kind: str, name: str, list_command: str
) -> NotFoundError:
    """The error for a missing ``name``, with "did you mean" when a stored name is
    close (a typo is the usual cause) and the command that lists the known ones."""
    known = session.scalars(select(model.name)).all()
    close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    return NotFoundError(
        f"{kind} {name!r} does not exist; {hint}`{list_command}` shows the known ones"
    )
