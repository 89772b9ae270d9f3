"""Search jobs: submit, claim, heartbeat, finish, cancel, recover.

Concurrency model (honest about locks and races):

* **Claim.** A worker claims the oldest queued job inside one transaction. On
  PostgreSQL the candidate row is selected ``FOR UPDATE SKIP LOCKED``, so many
  workers claim different jobs without waiting on each other. On SQLite every
  transaction starts with ``BEGIN IMMEDIATE`` (see ``service.db.engine``), so
  claims are serialised by the database write lock; ``SKIP LOCKED`` is not
  needed there.
* **Lease.** A claimed job carries ``worker_id`` and ``lease_expires_at``. The
  worker extends the lease with heartbeats. Every state change by a worker is
  conditional on ``worker_id`` still being its own: a worker whose lease was
  taken over learns it from the heartbeat's return value and stops, and cannot
  overwrite the new owner's state.
* **Recovery.** A running job whose lease expired (its worker died) is put back
  in the queue by the next claim; its stored trials are kept, and the search
  resumes from them (the Optuna study and our trial rows), so no evaluation is
  lost or repeated. After ``max_attempts`` lost leases the job fails.
* **Host.** A job with ``required_host`` (a search on a local device, whose
  latencies only that machine can measure) is claimed only by a worker that
  passes the same ``host``; the filter is part of the claim's one locked
  SELECT, so it adds no race. A worker on the wrong host never sees the job.
* **Awaiting verification.** A search on a device no worker can measure ends
  ``running -> awaiting_verification`` (:func:`await_verification`, conditional
  on the lease like every worker transition; the lease is cleared). No worker
  claims or re-queues such a job. Submitted measurements move it to
  ``succeeded`` in :func:`settle_verification`, which locks the row (``FOR
  UPDATE``; ``BEGIN IMMEDIATE`` on SQLite) and re-ranks from *every* stored
  measurement read under that lock: two submissions at once are serialised, and
  the later one answers from the union of both, whatever the order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from service.db import JOB_STATES, SearchJob, utcnow
from service.domain.errors import ConflictError, NotFoundError
from service.domain.owners import LOCAL, Scope, restrict, sees

__all__ = [
    "await_verification",
    "cancel_job",
    "claim_next_job",
    "complete_job",
    "fail_job",
    "get_job",
    "heartbeat",
    "list_jobs",
    "release_job",
    "requeue_expired",
    "settle_verification",
    "submit_job",
]

ACTIVE_STATES = ("queued", "running")


def submit_job(
    session: Session,
    spec: dict[str, Any],
    *,
    name: str = "",
    owner: str = LOCAL,
    supernet_id: int | None = None,
    required_host: str | None = None,
) -> SearchJob:
    """Queue a job. ``spec`` must already be validated (``service.domain.specs``);
    with ``required_host`` only a worker on that host may claim it."""
    job = SearchJob(
        name=name,
        spec=spec,
        owner=owner,
        supernet_id=supernet_id,
        state="queued",
        attempts=0,
        required_host=required_host,
    )
    session.add(job)
    session.flush()
    if not job.name:
        job.name = f"job-{job.id}"
    job.study_name = f"hwnas-job-{job.id}"
    return job


def get_job(session: Session, job_id: int, scope: Scope | None = None) -> SearchJob:
    """The job ``job_id``; one that ``scope`` does not see does not exist."""
    job = session.get(SearchJob, job_id)
    if job is None or not sees(scope, job):
        raise NotFoundError(f"search job {job_id} does not exist")
    return job


def list_jobs(
    session: Session,
    *,
    state: str | None = None,
    scope: Scope | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> Sequence[SearchJob]:
    """Newest first; page with ``before_id`` (the smallest id of the previous page)."""
    if state is not None and state not in JOB_STATES:
        raise ValueError(f"state must be one of {list(JOB_STATES)}, got {state!r}")
    if not 1 <= limit <= 1000:
        raise ValueError(f"limit must be in [1, 1000], got {limit}")
    query = restrict(select(SearchJob), SearchJob, scope).order_by(SearchJob.id.desc()).limit(limit)
    if state is not None:
        query = query.where(SearchJob.state == state)
    if before_id is not None:
        query = query.where(SearchJob.id < before_id)
    return session.scalars(query).all()


def requeue_expired(session: Session, *, max_attempts: int, now: datetime | None = None) -> int:
    """Put running jobs with an expired lease back in the queue (or fail them
    after ``max_attempts``). Returns how many jobs changed."""
    now = now or utcnow()
    expired = session.scalars(
        select(SearchJob)
        .where(SearchJob.state == "running", SearchJob.lease_expires_at < now)
        .with_for_update(skip_locked=True)
    ).all()
    for job in expired:
        lost = job.worker_id
        job.worker_id = None
        job.lease_expires_at = None
        if job.attempts >= max_attempts:
            job.state = "failed"
            job.finished_at = now
            job.error = f"worker {lost} stopped responding; gave up after {job.attempts} attempts"
        else:
            job.state = "queued"
    return len(expired)


def claim_next_job(
    session: Session,
    worker_id: str,
    *,
    lease_s: float,
    max_attempts: int,
    now: datetime | None = None,
    host: str | None = None,
) -> SearchJob | None:
    """Claim the oldest queued job for ``worker_id``, or return ``None``. Jobs
    bound to a host other than ``host`` (all bound jobs when ``host`` is None)
    are left to workers on that host."""
    now = now or utcnow()
    requeue_expired(session, max_attempts=max_attempts, now=now)
    on_host: ColumnElement[bool] = SearchJob.required_host.is_(None)
    if host is not None:
        on_host = or_(on_host, SearchJob.required_host == host)
    job = session.scalars(
        select(SearchJob)
        .where(SearchJob.state == "queued", on_host)
        .order_by(SearchJob.created_at, SearchJob.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()
    if job is None:
        return None
    job.state = "running"
    job.worker_id = worker_id
    job.attempts += 1
    job.heartbeat_at = now
    job.lease_expires_at = now + timedelta(seconds=lease_s)
    job.started_at = job.started_at or now
    job.error = None
    session.flush()
    return job


def _owned(session: Session, job_id: int, worker_id: str, values: dict[str, Any]) -> bool:
    result = session.execute(
        update(SearchJob)
        .where(
            SearchJob.id == job_id,
            SearchJob.worker_id == worker_id,
            SearchJob.state == "running",
        )
        .values(**values, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def heartbeat(
    session: Session,
    job_id: int,
    worker_id: str,
    *,
    lease_s: float,
    progress: float | None = None,
    n_evaluations: int | None = None,
) -> bool:
    """Extend the lease; False means the job is no longer this worker's (lease
    lost, or the job was cancelled) and the worker must stop working on it."""
    now = utcnow()
    values: dict[str, Any] = {
        "heartbeat_at": now,
        "lease_expires_at": now + timedelta(seconds=lease_s),
    }
    if progress is not None:
        values["progress"] = min(max(progress, 0.0), 1.0)
    if n_evaluations is not None:
        values["n_evaluations"] = n_evaluations
    return _owned(session, job_id, worker_id, values)


def complete_job(session: Session, job_id: int, worker_id: str, result: dict[str, Any]) -> bool:
    return _owned(
        session,
        job_id,
        worker_id,
        {
            "state": "succeeded",
            "result": result,
            "progress": 1.0,
            "finished_at": utcnow(),
            "lease_expires_at": None,
        },
    )


def await_verification(
    session: Session, job_id: int, worker_id: str, result: dict[str, Any]
) -> bool:
    """The search is done but its answer waits for latencies measured on the
    device (``result["verification"]`` lists the candidates)."""
    return _owned(
        session,
        job_id,
        worker_id,
        {
            "state": "awaiting_verification",
            "result": result,
            "progress": 1.0,
            "worker_id": None,
            "lease_expires_at": None,
        },
    )


def settle_verification(
    session: Session,
    job_id: int,
    rerank: Callable[[SearchJob], tuple[dict[str, Any], bool]],
) -> SearchJob:
    """Re-rank a verified job's answer under its row lock (race contract above).

    ``rerank(job)`` returns the new result and whether the verification is
    complete (the job then becomes, or stays, ``succeeded``). Only jobs with a
    verification list (awaiting it, or already settled) can be re-ranked.
    """
    job = session.scalars(
        select(SearchJob)
        .where(SearchJob.id == job_id)
        .with_for_update()
        # Read under the lock, not from what this session loaded before it.
        .execution_options(populate_existing=True)
    ).first()
    if job is None:
        raise NotFoundError(f"search job {job_id} does not exist")
    verification = (job.result or {}).get("verification") or {}
    if job.state not in ("awaiting_verification", "succeeded") or not verification.get(
        "candidates"
    ):
        raise ConflictError(
            f"search job {job_id} is {job.state} and has no candidates awaiting verification"
        )
    result, complete = rerank(job)
    job.result = result
    flag_modified(job, "result")  # a JSON column: say it changed, whatever rerank returned
    if complete and job.state != "succeeded":
        job.state = "succeeded"
        job.finished_at = utcnow()
    session.flush()
    return job


def fail_job(session: Session, job_id: int, worker_id: str, error: str) -> bool:
    return _owned(
        session,
        job_id,
        worker_id,
        {
            "state": "failed",
            "error": error[:10_000],
            "finished_at": utcnow(),
            "lease_expires_at": None,
        },
    )


def release_job(session: Session, job_id: int, worker_id: str, reason: str) -> bool:
    """Give a running job back to the queue because its transaction failed for
    a transient reason (a lost database connection): it is resumed from its
    stored trials by the next claim, and the attempt does not count. Fenced
    like every worker write: False if the job is no longer ``worker_id``'s."""
    return _owned(
        session,
        job_id,
        worker_id,
        {
            "state": "queued",
            "worker_id": None,
            "lease_expires_at": None,
            "attempts": SearchJob.attempts - 1,
            "error": reason[:1000],
        },
    )


def cancel_job(session: Session, job_id: int, scope: Scope | None = None) -> SearchJob:
    """Cancel a queued or running job (a running worker notices at its next heartbeat)."""
    job = session.scalars(select(SearchJob).where(SearchJob.id == job_id).with_for_update()).first()
    if job is None or not sees(scope, job):
        raise NotFoundError(f"search job {job_id} does not exist")
    if job.state not in ACTIVE_STATES:
        raise ConflictError(
            f"search job {job_id} is already {job.state}; only queued or running jobs can be cancelled"
        )
    job.state = "cancelled"
    job.finished_at = utcnow()
    job.worker_id = None
    job.lease_expires_at = None
    return job
