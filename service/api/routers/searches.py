"""/v1/searches: submit search jobs, follow them, read their trials."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from service.api.deps import Caller, ReadSessionDep, WriteSessionDep, get_hwnas, reader, writer
from service.api.files import zip_response
from service.api.routers.query import PNG_RESPONSE, png_response
from service.api.schemas import AfterId, JobId, JobName, JobOut, TrialOut
from service.domain import jobs, searches, subnets
from service.domain.job_progress import job_view
from service.domain.specs import SearchSpec
from service.runtime import Runtime

router = APIRouter(prefix="/v1/searches", tags=["searches"])


@router.post("", status_code=201)
def submit(
    body: SearchSpec,
    request: Request,
    session: WriteSessionDep,
    caller: Annotated[Caller, Depends(writer)],
    name: JobName = "",
) -> JobOut:
    """Queue a search. The body is a search spec (see ``SearchSpec``); a worker runs it."""
    job = searches.submit_search(
        session, body, scope=caller.scope, name=name, check_latency=request.app.state.latency_check
    )
    return caller.shown(JobOut.of(job))


@router.get("")
def list_searches(
    session: ReadSessionDep,
    caller: Annotated[Caller, Depends(reader)],
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    before_id: AfterId = None,
) -> list[JobOut]:
    rows = jobs.list_jobs(
        session, state=state, scope=caller.scope, limit=limit, before_id=before_id
    )
    return [caller.shown(job_view(session, j)) for j in rows]


@router.get("/{job_id}")
def get_search(
    job_id: JobId, session: ReadSessionDep, caller: Annotated[Caller, Depends(reader)]
) -> JobOut:
    return caller.shown(job_view(session, jobs.get_job(session, job_id, caller.scope)))


@router.post("/{job_id}/cancel")
def cancel_search(
    job_id: JobId, session: WriteSessionDep, caller: Annotated[Caller, Depends(writer)]
) -> JobOut:
    return caller.shown(JobOut.of(jobs.cancel_job(session, job_id, caller.scope)))


@router.get("/{job_id}/trials")
def list_search_trials(
    job_id: JobId,
    session: ReadSessionDep,
    caller: Annotated[Caller, Depends(reader)],
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
    after_id: AfterId = None,
) -> list[TrialOut]:
    jobs.get_job(session, job_id, caller.scope)
    rows = subnets.list_trials(session, job_id=job_id, limit=limit, after_id=after_id)
    return [TrialOut.of(t) for t in rows]


@router.get("/{job_id}/progress.png", response_class=Response, responses=PNG_RESPONSE)
def progress_png(
    job_id: JobId, session: ReadSessionDep, caller: Annotated[Caller, Depends(reader)]
) -> Response:
    """The job's real evaluations and its best feasible accuracy so far, as a PNG."""
    from service.orchestration.plots import progress_png as draw

    job = jobs.get_job(session, job_id, caller.scope)
    return png_response(lambda path: draw(session, job, path))


@router.get("/{job_id}/verification")
def verification(
    job_id: JobId, session: ReadSessionDep, caller: Annotated[Caller, Depends(reader)]
) -> dict[str, Any]:
    """The candidates of a job to measure on its device, in the order the search
    would measure them (a remote device: the job awaits their latencies, to be
    posted to ``/v1/devices/{device}/latencies`` with ``job``)."""
    from service.orchestration.verification import verification_of

    job = jobs.get_job(session, job_id, caller.scope)
    return {"job": job.id, "state": job.state, **verification_of(job)}


@router.get("/{job_id}/verification.zip")
def verification_zip(
    job_id: JobId,
    rt: Annotated[Runtime, Depends(get_hwnas)],
    caller: Annotated[Caller, Depends(writer)],
) -> Response:
    """The candidates as ONNX files + manifest (naming the job) + standalone
    measure.py (a write token: building it costs seconds of CPU)."""
    from service.orchestration.verification import verification_package

    with rt.read_session() as s:
        jobs.get_job(s, job_id, caller.scope)
    with tempfile.TemporaryDirectory() as tmp:
        verification_package(rt, job_id, Path(tmp))
        return zip_response(Path(tmp), f"job-{job_id}-verification.zip")
