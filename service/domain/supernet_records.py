"""Supernets: trained weight-sharing networks, and tabular benchmark spaces."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db import Supernet
from service.domain.names import add_named, check_name, not_found

__all__ = ["get_supernet", "list_supernets", "register_supernet"]


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
    )
    return add_named(session, "supernet", row)


def get_supernet(session: Session, name: str) -> Supernet:
    row = session.scalar(select(Supernet).where(Supernet.name == name))
    if row is None:
        raise not_found(session, Supernet, "supernet", name, "hwnas supernet list")
    return row


def list_supernets(session: Session) -> Sequence[Supernet]:
    return session.scalars(select(Supernet).order_by(Supernet.name)).all()
