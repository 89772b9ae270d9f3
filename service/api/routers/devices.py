"""/v1/devices: register devices, read their measurements."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from service.api.deps import Caller, SessionDep, get_hwnas, reader, writer
from service.api.files import zip_response
from service.api.schemas import DeviceIn, DeviceOut
from service.domain import devices, predictor_records
from service.domain.views import PredictorOut
from service.runtime import Runtime

router = APIRouter(prefix="/v1/devices", tags=["devices"])


@router.post("", status_code=201)
def create_device(
    body: DeviceIn, session: SessionDep, _: Annotated[Caller, Depends(writer)]
) -> DeviceOut:
    device = devices.create_device(
        session, body.name, kind=body.kind, description=body.description, batch_size=body.batch_size
    )
    return DeviceOut.of(device)


@router.get("")
def list_devices(session: SessionDep, _: Annotated[Caller, Depends(reader)]) -> list[DeviceOut]:
    return [DeviceOut.of(d) for d in devices.list_devices(session)]


@router.get("/{name}")
def get_device(name: str, session: SessionDep, _: Annotated[Caller, Depends(reader)]) -> DeviceOut:
    return DeviceOut.of(devices.get_device(session, name))


@router.delete("/{name}", status_code=204)
def delete_device(name: str, session: SessionDep, _: Annotated[Caller, Depends(writer)]) -> None:
    devices.remove_device(session, name)


@router.get("/{name}/measurements")
def list_measurements(
    name: str,
    session: SessionDep,
    _: Annotated[Caller, Depends(reader)],
    space: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[dict[str, Any]]:
    device = devices.get_device(session, name)
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


class LatenciesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    space: str | None = Field(
        default=None, description="Search space (default ofa-mbv3-tiny; with job, the job's)."
    )
    reference_ms: list[float] | None = Field(
        default=None, description="One latency per reference arch, in order."
    )
    extra: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Further measurements [{arch, ms}] used to report quality.",
    )
    job: int | None = Field(
        default=None,
        description="A search job awaiting verification: `records` measure its candidates.",
    )
    records: list[dict[str, Any]] | None = Field(
        default=None,
        description="With job: the JSON records measure.py printed for the cand_NN.onnx files.",
    )


class MeasureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    space: str = "ofa-mbv3-tiny"
    backend: str = "torch-cpu"
    threads: int = Field(default=1, ge=1)
    batch: int = Field(default=1, ge=1)
    extra: int = Field(default=10, ge=0, le=200)
    repeats: int = Field(default=30, ge=3, le=1000)


@router.get("/{name}/references")
def references(
    name: str,
    session: SessionDep,
    _: Annotated[Caller, Depends(reader)],
    space: str = "ofa-mbv3-tiny",
) -> dict[str, Any]:
    """The reference subnets this device must measure (configs, in order)."""
    from predictors.latency import reference_archs
    from service.orchestration.registration import space_with_predictor

    devices.get_device(session, name)
    return {
        "device": name,
        "space": space,
        "references": reference_archs(space_with_predictor(space)),
    }


@router.get("/{name}/references.zip")
def references_zip(
    name: str,
    rt: Annotated[Runtime, Depends(get_hwnas)],
    _: Annotated[Caller, Depends(reader)],
    space: str = "ofa-mbv3-tiny",
    batch: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """The reference subnets as ONNX files + manifest + standalone measure.py, zipped."""
    from service.orchestration.registration import reference_package

    with tempfile.TemporaryDirectory() as tmp:
        reference_package(rt, name, space, Path(tmp), batch=batch)
        return zip_response(Path(tmp), f"{name}-{space}-references.zip")


@router.post("/{name}/latencies", status_code=201)
def submit_latencies(
    name: str,
    body: LatenciesIn,
    rt: Annotated[Runtime, Depends(get_hwnas)],
    _: Annotated[Caller, Depends(writer)],
) -> dict[str, Any]:
    """Latencies measured on the device: the reference subnets' (adapts and stores
    its latency model), or with ``job`` a search's candidates (``records``: stored
    as measurements, and the job's answer re-ranked on them)."""
    from service.orchestration.registration import submit_latencies as submit

    if body.job is not None:
        from service.orchestration.verification import submit_verification

        if body.records is None or body.reference_ms is not None or body.extra:
            raise ValueError("with job, give records (measure.py's output), not reference_ms/extra")
        text = "\n".join(json.dumps(r) for r in body.records)
        return submit_verification(rt, name, body.space, text, body.job)
    if body.reference_ms is None or body.records is not None:
        raise ValueError("give reference_ms (one latency per reference arch), or job and records")
    extra = []
    for i, item in enumerate(body.extra):
        if "arch" not in item or "ms" not in item:
            raise ValueError(f"extra[{i}] must be an object with 'arch' and 'ms'")
        extra.append((item["arch"], float(item["ms"])))
    space = body.space or "ofa-mbv3-tiny"
    return submit(rt, name, space, body.reference_ms, extra=extra).to_dict()


@router.post("/local/measure", status_code=201)
def measure_server(
    body: MeasureIn,
    rt: Annotated[Runtime, Depends(get_hwnas)],
    _: Annotated[Caller, Depends(writer)],
) -> dict[str, Any]:
    """Register the server's own machine (backend/threads/batch) by measuring it."""
    from service.orchestration.registration import measure_local

    reg = measure_local(
        rt, body.space, backend=body.backend, threads=body.threads, batch=body.batch,
        n_extra=body.extra, repeats=body.repeats,
    )  # fmt: skip
    return reg.to_dict()


@router.get("/{name}/models")
def models(
    name: str, session: SessionDep, _: Annotated[Caller, Depends(reader)]
) -> list[dict[str, Any]]:
    """The device's latency models, every version with its quality."""
    device = devices.get_device(session, name)
    return [
        PredictorOut.json_of(r)
        for r in predictor_records.list_predictors(session, kind="latency", device_id=device.id)
    ]
