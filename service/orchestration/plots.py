"""PNG plots of what the service stores, drawn by :mod:`nas.plots` (the one
plotting module): a supernet's front on a device with the budget line, a
search job's best accuracy against real evaluations, and a device's predicted
against measured latency. ``hwnas plot`` and the API's ``.png`` routes call
these."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from service.db import Device, SearchJob, Supernet
from service.domain import subnets
from service.domain.errors import DomainError
from service.domain.owners import Scope

__all__ = ["latency_png", "pareto_png", "progress_png"]


def pareto_png(
    session: Session,
    supernet: Supernet,
    device: Device,
    path: Path,
    *,
    budget_ms: float | None = None,
    scope: Scope | None = None,
) -> Path:
    """Every evaluated subnet of ``supernet`` (accuracy against latency on
    ``device``), its Pareto front, and with ``budget_ms`` the budget line and
    the best subnet under it (nas's rule, as ``query best`` answers)."""
    from nas.plots import plot_pareto

    points = subnets.candidate_points(session, supernet, device, scope)
    if not points:
        raise DomainError(
            f"no evaluated subnet of {supernet.name} has a latency on {device.name} yet"
        )
    chosen = None
    if budget_ms is not None:
        best, _ = subnets.best_under_budget(session, supernet, device, budget_ms, scope)
        ids = [p.trial_id for p in points]
        chosen = None if best is None else ids.index(best.trial_id)
    return plot_pareto(
        [p.latency_ms for p in points],
        [p.accuracy for p in points],
        path,
        budget_ms=budget_ms,
        chosen=chosen,
        title=f"{supernet.name} on {device.name}",
    )


def progress_png(session: Session, job: SearchJob, path: Path) -> Path:
    """The job's real evaluations in order and the best feasible accuracy so far."""
    from nas.plots import plot_best_vs_evaluations

    trials = []
    after: int | None = None
    while True:  # every page: a job may hold more trials than one page
        page = subnets.list_trials(session, job_id=job.id, limit=10_000, after_id=after)
        trials += [t for t in page if t.accuracy is not None]
        if len(page) < 10_000:
            break
        after = page[-1].id
    if not trials:
        raise DomainError(f"search job {job.id} has no real evaluation yet")
    return plot_best_vs_evaluations(
        [float(t.accuracy or 0.0) for t in trials],
        path,
        feasible=[bool((t.details or {}).get("feasible", True)) for t in trials],
        title=f"search job {job.id}: best feasible accuracy",
    )


def latency_png(session: Session, supernet: Supernet, device: Device, path: Path) -> Path:
    """Predicted against measured latency of every stored measurement of the
    device in the supernet's space."""
    from nas.plots import plot_latency_agreement
    from service.orchestration.device_latency import predicted_vs_measured

    points = predicted_vs_measured(session, supernet, device)["points"]
    if not points:
        raise DomainError(
            f"device {device.name} has no stored latency measurement in {supernet.space_name}"
        )
    return plot_latency_agreement(
        [p["predicted_ms"] for p in points],
        [p["measured_ms"] for p in points],
        path,
        title=f"{device.name}: predicted vs measured latency",
    )
