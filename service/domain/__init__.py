"""Domain functions of the service, one module per domain. Each takes a
SQLAlchemy session and leaves committing to the caller."""

from service.domain import (
    devices,
    jobs,
    predictor_records,
    searches,
    subnets,
    supernet_records,
    tokens,
)
from service.domain.errors import ConflictError, DomainError, NotFoundError

__all__ = [
    "ConflictError",
    "DomainError",
    "NotFoundError",
    "devices",
    "jobs",
    "predictor_records",
    "searches",
    "subnets",
    "supernet_records",
    "tokens",
]
