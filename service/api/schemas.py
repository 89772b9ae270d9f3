"""Request bodies and parameters of the HTTP API, every field bounded (see
:mod:`service.domain.bounds`); response bodies are the shared views of
:mod:`service.domain.views` (re-exported here)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field

from service.domain.bounds import MAX_DB_ID, MAX_LATENCY_MS, NAME_PATTERN, LatencyMs, Name, Text
from service.domain.views import DeviceOut, JobOut, PredictorOut, SupernetOut, TrialOut

__all__ = [
    "AfterId",
    "BudgetQuery",
    "DeviceIn",
    "DeviceOut",
    "ExportIn",
    "ExtraLatencyIn",
    "JobId",
    "JobName",
    "JobOut",
    "LatenciesIn",
    "MeasureIn",
    "NameParam",
    "NameQuery",
    "OptionalBudgetQuery",
    "PredictorOut",
    "SpaceFilter",
    "SpaceQuery",
    "SupernetOut",
    "TrialOut",
]

_SPACE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"

NameParam = Annotated[str, Path(min_length=1, max_length=128, pattern=NAME_PATTERN)]
NameQuery = Annotated[str, Query(min_length=1, max_length=128, pattern=NAME_PATTERN)]
SpaceQuery = Annotated[str, Query(min_length=1, max_length=64, pattern=_SPACE_PATTERN)]
SpaceFilter = Annotated[str | None, Query(min_length=1, max_length=64, pattern=_SPACE_PATTERN)]
JobName = Annotated[str, Query(max_length=128, pattern=r"^([A-Za-z0-9][A-Za-z0-9._-]{0,127})?$")]
JobId = Annotated[int, Path(ge=1, le=MAX_DB_ID)]
AfterId = Annotated[int | None, Query(ge=0, le=MAX_DB_ID)]
BudgetQuery = Annotated[float, Query(gt=0, le=MAX_LATENCY_MS, allow_inf_nan=False)]
OptionalBudgetQuery = Annotated[float | None, Query(gt=0, le=MAX_LATENCY_MS, allow_inf_nan=False)]


ExportFormat = Literal["state_dict", "torchscript", "onnx"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("state_dict", "torchscript", "onnx")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class DeviceIn(_Body):
    name: Name
    kind: Literal["local-cpu", "local-onnxruntime", "local-cuda", "remote", "table"] = Field(
        default="remote", description="Where latencies come from; `table` is bundled only."
    )
    description: Text = ""
    batch_size: int = Field(default=1, ge=1, le=4096)


class ExtraLatencyIn(_Body):
    arch: dict[str, Any] = Field(description="An architecture of the space (its config).")
    ms: LatencyMs


class LatenciesIn(_Body):
    space: Annotated[str | None, Field(max_length=64, pattern=_SPACE_PATTERN)] = Field(
        default=None, description="Search space (default ofa-mbv3-tiny; with job, the job's)."
    )
    reference_ms: list[LatencyMs] | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="One latency per reference arch, in order.",
    )
    extra: list[ExtraLatencyIn] = Field(
        default_factory=list,
        max_length=1000,
        description="Further measurements [{arch, ms}] used to report quality.",
    )
    job: Annotated[int | None, Field(ge=1, le=MAX_DB_ID)] = Field(
        default=None,
        description="A search job awaiting verification: `records` measure its candidates.",
    )
    records: list[dict[str, Any]] | None = Field(
        default=None,
        max_length=1000,
        description="With job: the JSON records measure.py printed for the cand_NN.onnx files.",
    )


class MeasureIn(_Body):
    space: Annotated[str, Field(max_length=64, pattern=_SPACE_PATTERN)] = "ofa-mbv3-tiny"
    backend: Literal["torch-cpu", "onnxruntime-cpu", "torch-cuda"] = "torch-cpu"
    threads: int = Field(default=1, ge=1, le=256)
    batch: int = Field(default=1, ge=1, le=1024)
    extra: int = Field(default=10, ge=0, le=200)
    #: Active registration: up to this many more subnets, where the model is least sure.
    max_extra: int = Field(default=0, ge=0, le=200)
    repeats: int = Field(default=30, ge=3, le=1000)


class ExportIn(_Body):
    """Which subnet to export: exactly one of ``arch``, ``trial_id``, or
    ``device`` + ``budget_ms`` (the best stored subnet under the budget)."""

    arch: dict[str, Any] | None = None
    trial_id: Annotated[int, Field(ge=1, le=MAX_DB_ID)] | None = None
    device: Name | None = None
    budget_ms: LatencyMs | None = None
    formats: list[ExportFormat] = Field(
        default_factory=lambda: list(EXPORT_FORMATS), min_length=1, max_length=3
    )
    bn_images: int = Field(default=2000, ge=1, le=100_000)
