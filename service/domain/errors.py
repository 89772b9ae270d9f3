"""Errors of the service's domain functions; the API and CLI map them to
HTTP statuses and exit messages."""

from __future__ import annotations

__all__ = ["ConflictError", "DomainError", "ForbiddenError", "NotFoundError"]


class DomainError(ValueError):
    """Bad input or a request that cannot be honoured (HTTP 400/422)."""


class NotFoundError(DomainError):
    """A named thing does not exist (HTTP 404)."""


class ConflictError(DomainError):
    """The request conflicts with the current state, e.g. a duplicate name (HTTP 409)."""


class ForbiddenError(DomainError):
    """The caller may see the thing but not do this to it (HTTP 403)."""
