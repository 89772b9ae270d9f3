"""/v1/supernets: the registered supernets and tabular spaces."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse

from service.api.deps import Caller, ReadSessionDep, get_hwnas, reader, writer
from service.api.schemas import ExportIn, NameParam, SupernetOut
from service.domain import predictor_records, supernet_records
from service.domain.views import PredictorOut
from service.runtime import Runtime

router = APIRouter(prefix="/v1/supernets", tags=["supernets"])


@router.get("")
def list_supernets(
    session: ReadSessionDep, caller: Annotated[Caller, Depends(reader)]
) -> list[SupernetOut]:
    return [
        caller.shown(SupernetOut.of(s))
        for s in supernet_records.list_supernets(session, caller.scope)
    ]


@router.get("/{name}")
def get_supernet(
    name: NameParam, session: ReadSessionDep, caller: Annotated[Caller, Depends(reader)]
) -> SupernetOut:
    return caller.shown(SupernetOut.of(supernet_records.get_supernet(session, name, caller.scope)))


@router.delete("/{name}", status_code=204)
def delete_supernet(
    name: NameParam,
    rt: Annotated[Runtime, Depends(get_hwnas)],
    caller: Annotated[Caller, Depends(writer)],
) -> None:
    """Delete the supernet, its trials, predictors and run directory."""
    from service.orchestration.training import remove_supernet

    remove_supernet(rt, name, caller.scope)


@router.post("/{name}/export")
def export(
    name: NameParam,
    body: ExportIn,
    rt: Annotated[Runtime, Depends(get_hwnas)],
    caller: Annotated[Caller, Depends(writer)],
) -> FileResponse:
    """The chosen subnet's weights (BN recalibrated) as a zip: ONNX, TorchScript,
    config + state_dict, and ``hwnas-export.json`` saying where it came from.
    Needs a write token: it is work on the server (minutes of CPU), not a read."""
    from service.orchestration.export import choose_subnet, export_zip

    with rt.read_session() as s:
        arch, provenance = choose_subnet(
            s,
            name,
            arch=body.arch,
            trial_id=body.trial_id,
            device=body.device,
            budget_ms=body.budget_ms,
            scope=caller.scope,
        )
    path = export_zip(
        rt, name, arch, formats=body.formats, n_bn_images=body.bn_images, provenance=provenance
    )
    return FileResponse(path, media_type="application/zip", filename=f"{name}-subnet.zip")


@router.get("/{name}/predictors")
def accuracy_predictors(
    name: NameParam, session: ReadSessionDep, caller: Annotated[Caller, Depends(reader)]
) -> list[dict[str, Any]]:
    """The supernet's accuracy predictor versions with their quality."""
    row = supernet_records.get_supernet(session, name, caller.scope)
    return [
        PredictorOut.json_of(r)
        for r in predictor_records.list_predictors(session, kind="accuracy", supernet_id=row.id)
    ]
