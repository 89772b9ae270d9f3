"""The job queue: claiming, leases, recovery, cancellation — on both backends."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from service.db import make_engine, make_session_factory, upgrade, utcnow
from service.domain import jobs
from service.domain.errors import ConflictError, NotFoundError


@pytest.fixture
def sessions(db_url: str):
    engine = make_engine(db_url)
    upgrade(engine)
    yield make_session_factory(engine)
    engine.dispose()


def _submit(sessions, n: int) -> list[int]:
    with sessions.begin() as s:
        return [jobs.submit_job(s, {"i": i}).id for i in range(n)]


def test_claim_oldest_first_and_lease_fields(sessions) -> None:
    ids = _submit(sessions, 2)
    with sessions.begin() as s:
        job = jobs.claim_next_job(s, "w1", lease_s=30, max_attempts=3)
        assert job is not None and job.id == ids[0]
        assert (job.state, job.worker_id, job.attempts) == ("running", "w1", 1)
        assert job.lease_expires_at is not None and job.lease_expires_at > utcnow()
        assert job.study_name == f"hwnas-job-{ids[0]}"
    with sessions.begin() as s:
        second = jobs.claim_next_job(s, "w2", lease_s=30, max_attempts=3)
        assert second is not None and second.id == ids[1]
        assert jobs.claim_next_job(s, "w3", lease_s=30, max_attempts=3) is None


def test_expired_lease_is_requeued_and_old_worker_is_fenced(sessions) -> None:
    (job_id,) = _submit(sessions, 1)
    with sessions.begin() as s:
        jobs.claim_next_job(s, "dead", lease_s=30, max_attempts=3)
    later = utcnow() + timedelta(seconds=60)
    with sessions.begin() as s:
        job = jobs.claim_next_job(s, "alive", lease_s=30, max_attempts=3, now=later)
        assert job is not None and job.id == job_id
        assert (job.worker_id, job.attempts) == ("alive", 2)
    with sessions.begin() as s:
        # The first worker comes back: it no longer owns the job and cannot finish it.
        assert jobs.heartbeat(s, job_id, "dead", lease_s=30) is False
        assert jobs.complete_job(s, job_id, "dead", {"x": 1}) is False
        assert jobs.heartbeat(s, job_id, "alive", lease_s=30, progress=0.5, n_evaluations=3)
    with sessions.begin() as s:
        assert jobs.complete_job(s, job_id, "alive", {"best": 1})
    with sessions.begin() as s:
        job = jobs.get_job(s, job_id)
        assert (job.state, job.result, job.progress, job.n_evaluations) == (
            "succeeded",
            {"best": 1},
            1.0,
            3,
        )


def test_job_fails_after_max_attempts(sessions) -> None:
    (job_id,) = _submit(sessions, 1)
    now = utcnow()
    for attempt in range(2):
        with sessions.begin() as s:
            assert (
                jobs.claim_next_job(s, f"w{attempt}", lease_s=1, max_attempts=2, now=now)
                is not None
            )
        now += timedelta(seconds=10)
    with sessions.begin() as s:
        assert jobs.claim_next_job(s, "w9", lease_s=1, max_attempts=2, now=now) is None
        job = jobs.get_job(s, job_id)
        assert job.state == "failed" and "gave up after 2 attempts" in (job.error or "")


def test_cancel(sessions) -> None:
    a, b = _submit(sessions, 2)
    with sessions.begin() as s:
        jobs.claim_next_job(s, "w", lease_s=30, max_attempts=3)
        jobs.cancel_job(s, a)  # running: the worker learns it at its next heartbeat
        jobs.cancel_job(s, b)
    with sessions.begin() as s:
        assert jobs.heartbeat(s, a, "w", lease_s=30) is False
        with pytest.raises(ConflictError, match="already cancelled"):
            jobs.cancel_job(s, a)
        with pytest.raises(NotFoundError):
            jobs.cancel_job(s, 999)
        assert jobs.claim_next_job(s, "w", lease_s=30, max_attempts=3) is None


def test_list_jobs_pages_and_validates(sessions) -> None:
    ids = _submit(sessions, 5)
    with sessions.begin() as s:
        first = jobs.list_jobs(s, limit=2)
        assert [j.id for j in first] == ids[::-1][:2]
        second = jobs.list_jobs(s, limit=2, before_id=first[-1].id)
        assert [j.id for j in second] == ids[::-1][2:4]
        with pytest.raises(ValueError, match="state must be one of"):
            jobs.list_jobs(s, state="bogus")


def test_concurrent_workers_claim_each_job_exactly_once(sessions) -> None:
    ids = _submit(sessions, 24)
    claimed: list[tuple[str, int]] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            for _ in range(40):
                with sessions.begin() as s:
                    job = jobs.claim_next_job(s, name, lease_s=60, max_attempts=3)
                    if job is None:
                        return
                    with lock:
                        claimed.append((name, job.id))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(j for _, j in claimed) == ids
