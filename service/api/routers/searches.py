"""/v1/searches: submit search jobs, follow them, read their trials."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from service.api.deps import Caller, SessionDep, get_hwnas, reader, writer
from service.api.files import zip_response
from service.api.schemas import JobOut, TrialOut
from service.domain import jobs, searches, subnets
from service.runtime import Runtime

router = APIRouter(prefix="/v1/searches", tags=["searches"])


@router.post("", status_code=201)
def submit(
    body: dict[str, Any],
    request: Request,
    session: SessionDep,
    caller: Annotated[Caller, Depends(writer)],
    name: str = "",
) -> JobOut:
    """Queue a search. The body is a search spec (see ``SearchSpec``); a worker runs it."""
    job = searches.submit_search(
        session, body, owner=caller.name, name=name, check_latency=request.app.state.latency_check
    )
    return JobOut.of(job)


@router.get("")
def list_searches(
    session: SessionDep,
    _: Annotated[Caller, Depends(reader)],
    state: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    before_id: int | None = None,
) -> list[JobOut]:
    return [
        JobOut.of(j) for j in jobs.list_jobs(session, state=state, limit=limit, before_id=before_id)
    ]


@router.get("/{job_id}")
def get_search(job_id: int, session: SessionDep, _: Annotated[Caller, Depends(reader)]) -> JobOut:
    return JobOut.of(jobs.get_job(session, job_id))


@router.post("/{job_id}/cancel")
def cancel_search(
    job_id: int, session: SessionDep, _: Annotated[Caller, Depends(writer)]
) -> JobOut:
    return JobOut.of(jobs.cancel_job(session, job_id))


@router.get("/{job_id}/trials")
def list_search_trials(
    job_id: int,
    session: SessionDep,
    _: Annotated[Caller, Depends(reader)],
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
    after_id: int | None = None,
) -> list[TrialOut]:
    jobs.get_job(session, job_id)
    rows = subnets.list_trials(session, job_id=job_id, limit=limit, after_id=after_id)
    return [TrialOut.of(t) for t in rows]


@router.get("/{job_id}/verification")
def verification(
    job_id: int, session: SessionDep, _: Annotated[Caller, Depends(reader)]
) -> dict[str, Any]:
    """The candidates of a job to measure on its device, in the order the search
    would measure them (a remote device: the job awaits their latencies, to be
    posted to ``/v1/devices/{device}/latencies`` with ``job``)."""
    from service.orchestration.verification import verification_of

    job = jobs.get_job(session, job_id)
    return {"job": job.id, "state": job.state, **verification_of(job)}


@router.get("/{job_id}/verification.zip")
def verification_zip(
    job_id: int,
    rt: Annotated[Runtime, Depends(get_hwnas)],
    _: Annotated[Caller, Depends(reader)],
) -> Response:
    """The candidates as ONNX files + manifest (naming the job) + standalone measure.py."""
    from service.orchestration.verification import verification_package

    with tempfile.TemporaryDirectory() as tmp:
        verification_package(rt, job_id, Path(tmp))
        return zip_response(Path(tmp), f"job-{job_id}-verification.zip")
