"""/v1/searches: submit search jobs, follow them, read their trials."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from service.api.deps import Caller, ReadSessionDep, WriteSessionDep, reader, writer
from service.api.routers.query import PNG_RESPONSE, png_response
from service.api.schemas import AfterId, JobId, JobName, JobOut, TrialOut
from service.domain import jobs, searches, subnets
from service.domain.job_progress import job_view
from service.domain.specs import SearchSpec

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
