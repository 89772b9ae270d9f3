"""/v1/devices: register devices, read their measurements."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from service.api.deps import Caller, SessionDep, reader, writer
from service.api.schemas import DeviceIn, DeviceOut
from service.domain import devices

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
