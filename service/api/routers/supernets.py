"""/v1/supernets: the registered supernets and tabular spaces."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from service.api.deps import Caller, SessionDep, get_hwnas, reader
from service.api.files import zip_response
from service.api.schemas import SupernetOut
from service.domain import predictor_records, supernet_records
from service.domain.views import PredictorOut
from service.runtime import Runtime

router = APIRouter(prefix="/v1/supernets", tags=["supernets"])


@router.get("")
def list_supernets(session: SessionDep, _: Annotated[Caller, Depends(reader)]) -> list[SupernetOut]:
    return [SupernetOut.of(s) for s in supernet_records.list_supernets(session)]


@router.get("/{name}")
def get_supernet(
    name: str, session: SessionDep, _: Annotated[Caller, Depends(reader)]
) -> SupernetOut:
    return SupernetOut.of(supernet_records.get_supernet(session, name))


class ExportIn(BaseModel):
    """Which subnet to export: exactly one of ``arch``, ``trial_id``, or
    ``device`` + ``budget_ms`` (the best stored subnet under the budget)."""

    model_config = ConfigDict(extra="forbid")

    arch: dict[str, Any] | None = None
    trial_id: int | None = None
    device: str | None = None
    budget_ms: float | None = Field(default=None, gt=0)
    formats: list[str] = Field(default_factory=lambda: ["state_dict", "torchscript", "onnx"])
    bn_images: int = Field(default=2000, ge=1)


@router.post("/{name}/export")
def export(
    name: str,
    body: ExportIn,
    rt: Annotated[Runtime, Depends(get_hwnas)],
    _: Annotated[Caller, Depends(reader)],
) -> Response:
    """The chosen subnet's weights (BN recalibrated) as a zip: ONNX, TorchScript,
    config + state_dict, and ``hwnas-export.json`` saying where it came from."""
    from service.orchestration.export import choose_subnet, export_subnet

    with rt.session() as s:
        arch, provenance = choose_subnet(
            s,
            name,
            arch=body.arch,
            trial_id=body.trial_id,
            device=body.device,
            budget_ms=body.budget_ms,
        )
    with tempfile.TemporaryDirectory() as tmp:
        export_subnet(
            rt,
            name,
            arch,
            Path(tmp),
            formats=body.formats,
            n_bn_images=body.bn_images,
            provenance=provenance,
        )
        return zip_response(Path(tmp), f"{name}-subnet.zip")


@router.get("/{name}/predictors")
def accuracy_predictors(
    name: str, session: SessionDep, _: Annotated[Caller, Depends(reader)]
) -> list[dict[str, Any]]:
    """The supernet's accuracy predictor versions with their quality."""
    row = supernet_records.get_supernet(session, name)
    return [
        PredictorOut.json_of(r)
        for r in predictor_records.list_predictors(session, kind="accuracy", supernet_id=row.id)
    ]
