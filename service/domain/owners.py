"""Who owns what: every job, device and supernet has an owner.

The owner is the name of the API token that created the row, or ``local`` for
the CLI, for rows created with auth off and for rows that existed before
owners were recorded. A caller sees and changes only its own rows; to anyone
else they do not exist (404, never 403, so names do not leak). An admin sees
all. Bundled rows (the benchmark spaces and their table devices) are visible
to everyone and changeable by no one.

Domain functions take an optional :class:`Scope`; ``None`` means "no
restriction" (the CLI and the workers, which act for the installation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, or_

from service.domain.errors import ForbiddenError

__all__ = ["LOCAL", "Scope", "check_changeable", "restrict", "sees"]

#: The owner of everything done without a token.
LOCAL = "local"

_S = TypeVar("_S", bound=Select[Any])


@dataclass(frozen=True)
class Scope:
    """The rows a caller may see: its own (``owner``), or all (``sees_all``)."""

    owner: str
    sees_all: bool = False


def sees(scope: Scope | None, row: Any) -> bool:
    """True when ``row`` (a model with ``owner``, maybe ``bundled``) is visible."""
    if scope is None or scope.sees_all:
        return True
    return bool(getattr(row, "bundled", False)) or row.owner == scope.owner


def restrict(query: _S, model: Any, scope: Scope | None) -> _S:
    """``query`` limited to the rows of ``model`` that ``scope`` sees."""
    if scope is None or scope.sees_all:
        return query
    if hasattr(model, "bundled"):
        return query.where(or_(model.owner == scope.owner, model.bundled.is_(True)))
    return query.where(model.owner == scope.owner)


def check_changeable(row: Any, kind: str) -> None:
    """Refuse changes to a bundled row (visible to all, so a 403 leaks nothing)."""
    if getattr(row, "bundled", False):
        raise ForbiddenError(f"{kind} {row.name!r} is bundled with hwnas and read-only")
