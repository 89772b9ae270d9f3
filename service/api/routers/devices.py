"""/v1/devices: register devices, read their measurements."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from service.api.deps import Caller, ReadSessionDep, WriteSessionDep, get_hwnas, reader, writer
from service.api.schemas import (
    DeviceIn,
    DeviceOut,
    LatenciesIn,
    MeasureIn,
    NameParam,
    NameQuery,
    SpaceFilter,
    SpaceQuery,
)
from service.domain import devices, jobs, predictor_records
from service.domain.errors import ForbiddenError
from service.domain.owners import check_changeable
from service.domain.views import PredictorOut
from service.runtime import Runtime

router = APIRouter(prefix="/v1/devices", tags=["devices"])


@router.post("", status_code=201)
def create_device(
    body: DeviceIn, session: WriteSessionDep, caller: Annotated[Caller, Depends(writer)]
) -> DeviceOut:
    if body.kind == "table":
        raise ForbiddenError("table devices are bundled with hwnas; they cannot be created")
    device = devices.create_device(
        session,
        body.name,
        kind=body.kind,
        description=body.description,
        batch_size=body.batch_size,
        owner=caller.name,
    )
    return DeviceOut.of(device)


@router.get("")
def list_devices(
    session: ReadSessionDep, caller: Annotated[Caller, Depends(reader)]
) -> list[DeviceOut]:
    return [DeviceOut.of(d) for d in devices.list_devices(session, caller.scope)]


@router.get("/{name}")
def get_device(
    name: NameParam, session: ReadSessionDep, caller: Annotated[Caller, Depends(reader)]
) -> DeviceOut:
    return DeviceOut.of(devices.get_device(session, name, caller.scope))


@router.delete("/{name}", status_code=204)
def delete_device(
    name: NameParam, session: WriteSessionDep, caller: Annotated[Caller, Depends(writer)]
) -> None:
    devices.remove_device(session, name, caller.scope)


@router.get("/{name}/measurements")
def list_measurements(
    name: NameParam,
    session: ReadSessionDep,
    caller: Annotated[Caller, Depends(reader)],
    space: SpaceFilter = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[dict[str, Any]]:
    device = devices.get_device(session, name, caller.scope)
    rows = devices.list_measurements(session, device, space_name=space, limit=limit)
    return [
        {
            "id": m.id,
            "space": m.space_name,
            "arch": m.arch,
            "arch_hash": m.arch_hash,
            "latency_ms": m.latency_ms,
            "spread_ms": m.spread_ms,
            "method": m.method,
            "is_reference": m.is_reference,
            "details": m.details,
            "created_at": m.created_at,
        }
        for m in rows
    ]


@router.get("/{name}/references")
def references(
    name: NameParam,
    session: ReadSessionDep,
    caller: Annotated[Caller, Depends(reader)],
    space: SpaceQuery = "ofa-mbv3-tiny",
) -> dict[str, Any]:
    """The reference subnets this device must measure (configs, in order)."""
    from predictors.latency import reference_archs
    from service.orchestration.registration import space_with_predictor

    devices.get_device(session, name, caller.scope)
    return {
        "device": name,
        "space": space,
        "references": reference_archs(space_with_predictor(space)),
    }


@router.get("/{name}/references.zip")
def references_zip(
    name: NameParam,
    rt: Annotated[Runtime, Depends(get_hwnas)],
    caller: Annotated[Caller, Depends(writer)],
    space: SpaceQuery = "ofa-mbv3-tiny",
    batch: Annotated[int | None, Query(ge=1, le=1024)] = None,
    round: Annotated[int | None, Query(ge=1, le=1000)] = None,
    count: Annotated[int, Query(ge=1, le=100)] = 5,
) -> FileResponse:
    """The reference subnets as ONNX files + manifest + standalone measure.py,
    zipped. Built once per space and batch and then served as a file; a write
    token is needed because the first build costs seconds of CPU. With
    ``round=K``: active round K instead (``count`` subnets the device's model
    is least sure of, as the CLI's ``device references --round`` writes), whose records
    go to ``POST /v1/devices/{name}/records``."""
    from service.orchestration.registration import reference_zip, round_zip

    with rt.read_session() as s:
        devices.get_device(s, name, caller.scope)
    if round is not None:
        path = round_zip(rt, name, space, round, count=count, batch=batch)
        return FileResponse(
            path, media_type="application/zip", filename=f"{name}-{space}-round{round}.zip"
        )
    path = reference_zip(rt, name, space, batch)
    return FileResponse(
        path, media_type="application/zip", filename=f"{name}-{space}-references.zip"
    )


@router.post("/{name}/latencies", status_code=201)
def submit_latencies(
    name: NameParam,
    body: LatenciesIn,
    rt: Annotated[Runtime, Depends(get_hwnas)],
    caller: Annotated[Caller, Depends(writer)],
) -> dict[str, Any]:
    """Latencies measured on the device: the reference subnets' (adapts and stores
    its latency model), or with ``job`` a search's candidates (``records``: stored
    as measurements, and the job's answer re-ranked on them)."""
    from service.orchestration.registration import submit_latencies as submit

    with rt.read_session() as s:
        check_changeable(devices.get_device(s, name, caller.scope), "device")
        if body.job is not None:
            jobs.get_job(s, body.job, caller.scope)  # others' jobs are 404
    if body.job is not None:
        from service.orchestration.verification import submit_verification

        if body.records is None or body.reference_ms is not None or body.extra:
            raise ValueError("with job, give records (measure.py's output), not reference_ms/extra")
        text = "\n".join(json.dumps(r) for r in body.records)
        return submit_verification(rt, name, body.space, text, body.job)
    if body.reference_ms is None or body.records is not None:
        raise ValueError("give reference_ms (one latency per reference arch), or job and records")
    extra = [(item.arch, item.ms) for item in body.extra]
    return submit(rt, name, body.space or "ofa-mbv3-tiny", body.reference_ms, extra=extra).to_dict()


#: A file of measurement records as measure.py prints it (JSON lines, sent as
#: plain text: what it is, and what every HTTP client can send).
_RECORDS_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "text/plain": {
                "schema": {"type": "string", "description": "measure.py's output, as it is"}
            }
        },
    }
}


@router.post("/{name}/records", status_code=201, openapi_extra=_RECORDS_BODY)
async def submit_records(
    name: NameParam,
    request: Request,
    rt: Annotated[Runtime, Depends(get_hwnas)],
    caller: Annotated[Caller, Depends(writer)],
    space: SpaceQuery = "ofa-mbv3-tiny",
) -> dict[str, Any]:
    """The measurement records that the reference package's ``measure.py``
    printed, posted as they are (``measure.py --submit URL`` does it): checked
    against the space and its reference set, stored, and the device's latency
    model adapted."""
    from service.orchestration.registration import submit_latency_file

    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPException(422, "the body must be UTF-8 text (measure.py's JSON lines)") from None

    def run() -> dict[str, Any]:
        with rt.read_session() as s:
            check_changeable(devices.get_device(s, name, caller.scope), "device")
        return submit_latency_file(rt, name, space, text).to_dict()

    return await run_in_threadpool(run)


@router.post("/local/measure", status_code=201)
def measure_server(
    body: MeasureIn,
    rt: Annotated[Runtime, Depends(get_hwnas)],
    caller: Annotated[Caller, Depends(writer)],
) -> dict[str, Any]:
    """Register the server's own machine (backend/threads/batch) by measuring it;
    ``max_extra`` > 0 adds active registration (as the CLI's ``device measure --max-extra``)."""
    from service.orchestration.registration import measure_local

    reg = measure_local(
        rt, body.space, backend=body.backend, threads=body.threads, batch=body.batch,
        n_extra=body.extra, max_extra=body.max_extra, repeats=body.repeats, owner=caller.name,
    )  # fmt: skip
    return reg.to_dict()


@router.get("/{name}/models")
def models(
    name: NameParam, session: ReadSessionDep, caller: Annotated[Caller, Depends(reader)]
) -> list[dict[str, Any]]:
    """The device's latency models, every version with its quality."""
    device = devices.get_device(session, name, caller.scope)
    return [
        PredictorOut.json_of(r)
        for r in predictor_records.list_predictors(session, kind="latency", device_id=device.id)
    ]


@router.get("/{name}/latency-fit")
def latency_fit(
    name: NameParam,
    session: ReadSessionDep,
    caller: Annotated[Caller, Depends(reader)],
    supernet: NameQuery,
) -> dict[str, Any]:
    """The device's stored latency measurements in ``supernet``'s space, each
    with the latency the search would predict for it (table or latency model)."""
    from service.domain import supernet_records
    from service.orchestration.device_latency import predicted_vs_measured

    device = devices.get_device(session, name, caller.scope)
    return predicted_vs_measured(
        session, supernet_records.get_supernet(session, supernet, caller.scope), device
    )
