"""A job's live progress as readers see it: the best feasible accuracy so far and
an estimate of the time left, derived from what is stored (the job's trials and
its timestamps) when it is read, so that workers write nothing extra for it."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.db import SearchJob, Trial, utcnow
from service.domain.views import JobOut

__all__ = ["best_feasible_accuracy", "eta_seconds", "job_view"]


def best_feasible_accuracy(session: Session, job: SearchJob) -> float | None:
    """The highest measured accuracy among the job's feasible evaluations so far."""
    value = session.scalar(
        select(func.max(Trial.accuracy)).where(
            Trial.job_id == job.id,
            Trial.accuracy_source == "measured",
            Trial.details["feasible"].as_boolean().is_(True),
        )
    )
    return None if value is None else float(value)


def eta_seconds(job: SearchJob) -> float | None:
    """Seconds left at the rate so far (running jobs with at least one evaluation)."""
    total = int((job.spec or {}).get("n_evaluations", 0) or 0)
    done = job.n_evaluations or 0
    if job.state != "running" or job.started_at is None or done <= 0 or total <= 0:
        return None
    elapsed = (utcnow() - job.started_at).total_seconds()
    return max(0.0, elapsed / done * max(total - done, 0))


def job_view(session: Session, job: SearchJob) -> JobOut:
    """The job's shared output shape, with its live progress."""
    return JobOut.of(job).model_copy(
        update={"best_accuracy": best_feasible_accuracy(session, job), "eta_s": eta_seconds(job)}
    )
