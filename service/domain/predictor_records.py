"""Versioned storage of fitted predictors (accuracy per supernet, latency per device)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.db import PredictorModel
from service.domain.errors import ConflictError, NotFoundError

__all__ = ["latest_predictor", "list_predictors", "scope_of", "store_predictor"]


def scope_of(*, device_id: int | None = None, supernet_id: int | None = None) -> str:
    """The version-numbering scope of a predictor."""
    if (device_id is None) == (supernet_id is None):
        raise ValueError("a predictor belongs to exactly one device or one supernet")
    return f"device:{device_id}" if device_id is not None else f"supernet:{supernet_id}"


def store_predictor(
    session: Session,
    *,
    kind: str,
    space_name: str,
    blob: bytes,
    metrics: dict[str, Any],
    n_train: int,
    device_id: int | None = None,
    supernet_id: int | None = None,
) -> PredictorModel:
    """Store a new version (1, 2, ...) of a predictor. Concurrent writers of the
    same scope cannot both get one number: the unique constraint rejects the
    second, which is reported as a conflict to retry."""
    scope = scope_of(device_id=device_id, supernet_id=supernet_id)
    current = session.scalar(
        select(func.max(PredictorModel.version)).where(
            PredictorModel.kind == kind, PredictorModel.scope == scope
        )
    )
    row = PredictorModel(
        kind=kind,
        scope=scope,
        space_name=space_name,
        device_id=device_id,
        supernet_id=supernet_id,
        version=(current or 0) + 1,
        blob=blob,
        metrics=metrics,
        n_train=n_train,
    )
    session.add(row)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise ConflictError(
            f"{kind} predictor for {scope} was stored concurrently; retry"
        ) from None
    return row


def latest_predictor(
    session: Session,
    *,
    kind: str,
    device_id: int | None = None,
    supernet_id: int | None = None,
    version: int | None = None,
) -> PredictorModel:
    scope = scope_of(device_id=device_id, supernet_id=supernet_id)
    query = select(PredictorModel).where(PredictorModel.kind == kind, PredictorModel.scope == scope)
    if version is not None:
        query = query.where(PredictorModel.version == version)
    row = session.scalar(query.order_by(PredictorModel.version.desc()).limit(1))
    if row is None:
        which = f" version {version}" if version is not None else ""
        raise NotFoundError(f"no {kind} predictor{which} stored for {scope}")
    return row


def list_predictors(
    session: Session,
    *,
    kind: str | None = None,
    device_id: int | None = None,
    supernet_id: int | None = None,
) -> Sequence[PredictorModel]:
    query = select(PredictorModel).order_by(PredictorModel.scope, PredictorModel.version)
    if kind is not None:
        query = query.where(PredictorModel.kind == kind)
    if device_id is not None or supernet_id is not None:
        query = query.where(
            PredictorModel.scope == scope_of(device_id=device_id, supernet_id=supernet_id)
        )
    return session.scalars(query).all()
