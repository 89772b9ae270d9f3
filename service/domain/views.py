"""The one public shape of each resource, shared by the HTTP API (response
models) and the CLI (``--json``), so that both always print the same keys.

Built from ORM rows by attribute (``DeviceOut.of(row)``), never by copying
columns by hand: a column added to a view is added for every caller at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict

__all__ = [
    "DeviceOut",
    "JobOut",
    "PredictorOut",
    "SupernetOut",
    "TrialOut",
    "View",
    "short_error",
]

#: The longest error a non-admin caller is shown.
SHORT_ERROR_CHARS = 300


def short_error(error: str | None) -> str | None:
    """The first line of ``error`` (the exception and its message), capped: full
    tracebacks go to the log and to admins only."""
    if not error:
        return error
    first = error.strip().splitlines()[0] if error.strip() else ""
    return first[:SHORT_ERROR_CHARS]


class View(BaseModel):
    """Base of the output shapes: read from attributes, dumped as JSON-ready dicts."""

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def of(cls, row: object) -> Self:
        return cls.model_validate(row)

    @classmethod
    def json_of(cls, row: object) -> dict[str, Any]:
        """What ``--json`` prints and the API returns for ``row``."""
        return cls.model_validate(row).model_dump(mode="json")


class DeviceOut(View):
    name: str
    kind: str
    description: str
    host: str | None
    backend: str | None
    threads: int | None
    batch_size: int
    properties: dict[str, Any]
    owner: str
    bundled: bool
    created_at: datetime


class SupernetOut(View):
    name: str
    space_name: str
    space_config: dict[str, Any]
    dataset: dict[str, Any]
    n_classes: int | None
    checkpoint_path: str | None
    status: str
    error: str | None
    metrics: dict[str, Any]
    owner: str
    bundled: bool
    created_at: datetime

    def redacted(self) -> Self:
        """What a non-admin API caller sees: no server paths, a one-line error."""
        return self.model_copy(update={"checkpoint_path": None, "error": short_error(self.error)})


class JobOut(View):
    id: int
    name: str
    state: str
    spec: dict[str, Any]
    progress: float
    n_evaluations: int
    owner: str
    worker_id: str | None
    attempts: int
    error: str | None
    result: dict[str, Any] | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    #: Live progress, filled by ``service.domain.job_progress.job_view`` (None
    #: when nothing feasible was evaluated yet, or the job is not running).
    best_accuracy: float | None = None
    eta_s: float | None = None

    def redacted(self) -> Self:
        """What a non-admin API caller sees: the error's first line, no traceback."""
        return self.model_copy(update={"error": short_error(self.error)})


class TrialOut(View):
    id: int
    job_id: int | None
    arch: dict[str, Any]
    arch_hash: str
    accuracy: float | None
    accuracy_source: str
    latency_ms: float | None
    latency_source: str | None
    latency_std_ms: float | None
    latencies: dict[str, Any]
    macs: int | None
    params: int | None
    created_at: datetime


class PredictorOut(View):
    """A stored predictor version (never its blob)."""

    version: int
    kind: str
    space_name: str
    n_train: int
    metrics: dict[str, Any]
    created_at: datetime
