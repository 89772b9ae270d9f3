"""Supernets: trained weight-sharing networks, and tabular benchmark spaces."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.db import SearchJob, Supernet
from service.domain.errors import ConflictError
from service.domain.names import add_named, check_name, not_found
from service.domain.owners import LOCAL, Scope, check_changeable, restrict, sees

__all__ = ["get_supernet", "list_supernets", "register_supernet", "remove_supernet"]


def register_supernet(
    session: Session,
    name: str,
    *,
    space_name: str,
    space_config: dict[str, Any],
    dataset: dict[str, Any] | None = None,
    n_classes: int | None = None,
    checkpoint_path: str | None = None,
    schedule: dict[str, Any] | None = None,
    status: str = "ready",
    metrics: dict[str, Any] | None = None,
    description: str = "",
    owner: str = LOCAL,
    bundled: bool = False,
) -> Supernet:
    check_name("supernet", name)
    from supernets import available_spaces

    if space_name not in available_spaces():
        raise ValueError(
            f"unknown search space {space_name!r}; known: {', '.join(available_spaces())}"
        )
    row = Supernet(
        name=name,
        space_name=space_name,
        space_config=space_config,
        dataset=dataset or {},
        n_classes=n_classes,
        checkpoint_path=checkpoint_path,
        schedule=schedule,
        status=status,
        metrics=metrics or {},
        description=description,
        owner=owner,
        bundled=bundled,
    )
    return add_named(session, "supernet", row)


def get_supernet(session: Session, name: str, scope: Scope | None = None) -> Supernet:
    """The supernet called ``name``; one that ``scope`` does not see does not exist."""
    row = session.scalar(select(Supernet).where(Supernet.name == name))
    if row is None or not sees(scope, row):
        raise not_found(session, Supernet, "supernet", name, "hwnas supernet list", scope)
    return row


def list_supernets(session: Session, scope: Scope | None = None) -> Sequence[Supernet]:
    return session.scalars(
        restrict(select(Supernet), Supernet, scope).order_by(Supernet.name)
    ).all()


def remove_supernet(session: Session, name: str, scope: Scope | None = None) -> Supernet:
    """Delete the supernet's row (its trials and predictors go with it; its jobs
    stay, without a supernet). Deleting its files is the caller's business:
    see ``service.orchestration.training.remove_supernet``."""
    row = get_supernet(session, name, scope)
    check_changeable(row, "supernet")
    active = session.scalar(
        select(func.count(SearchJob.id)).where(
            SearchJob.supernet_id == row.id, SearchJob.state.in_(("queued", "running"))
        )
    )
    if active:
        raise ConflictError(
            f"supernet {name!r} has {active} queued or running search job(s); cancel them first"
        )
    session.delete(row)
    session.flush()
    return row
