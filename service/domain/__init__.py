"""Domain functions of the service, one module per domain. Each takes a
SQLAlchemy session and leaves committing to the caller."""

from service.domain import devices, jobs, predictors, supernets, tokens
from service.domain.errors import ConflictError, DomainError, NotFoundError

__all__ = [
    "ConflictError",
    "DomainError",
    "NotFoundError",
    "devices",
    "jobs",
    "predictors",
    "supernets",
    "tokens",
]
