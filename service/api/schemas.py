"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from service.db import Device, SearchJob, Supernet, Trial
from service.domain.devices import DEVICE_KINDS

__all__ = [
    "DeviceIn",
    "DeviceOut",
    "JobOut",
    "SupernetOut",
    "TrialOut",
]


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    kind: str = Field(default="remote", description=f"One of {', '.join(DEVICE_KINDS)}.")
    description: str = ""
    batch_size: int = Field(default=1, ge=1)


class DeviceOut(BaseModel):
    name: str
    kind: str
    description: str
    host: str | None
    backend: str | None
    threads: int | None
    batch_size: int
    properties: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, d: Device) -> DeviceOut:
        return cls(
            name=d.name,
            kind=d.kind,
            description=d.description,
            host=d.host,
            backend=d.backend,
            threads=d.threads,
            batch_size=d.batch_size,
            properties=d.properties,
            created_at=d.created_at,
        )


class SupernetOut(BaseModel):
    name: str
    space_name: str
    space_config: dict[str, Any]
    dataset: dict[str, Any]
    n_classes: int | None
    checkpoint_path: str | None
    status: str
    metrics: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, s: Supernet) -> SupernetOut:
        return cls(
            name=s.name,
            space_name=s.space_name,
            space_config=s.space_config,
            dataset=s.dataset,
            n_classes=s.n_classes,
            checkpoint_path=s.checkpoint_path,
            status=s.status,
            metrics=s.metrics,
            created_at=s.created_at,
        )


class JobOut(BaseModel):
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

    @classmethod
    def of(cls, j: SearchJob) -> JobOut:
        return cls(
            id=j.id,
            name=j.name,
            state=j.state,
            spec=j.spec,
            progress=j.progress,
            n_evaluations=j.n_evaluations,
            owner=j.owner,
            worker_id=j.worker_id,
            attempts=j.attempts,
            error=j.error,
            result=j.result,
            created_at=j.created_at,
            started_at=j.started_at,
            finished_at=j.finished_at,
        )


class TrialOut(BaseModel):
    id: int
    job_id: int | None
    arch: dict[str, Any]
    arch_hash: str
    accuracy: float | None
    accuracy_source: str
    latency_ms: float | None
    latency_source: str | None
    latencies: dict[str, Any]
    macs: int | None
    params: int | None
    created_at: datetime

    @classmethod
    def of(cls, t: Trial) -> TrialOut:
        return cls(
            id=t.id,
            job_id=t.job_id,
            arch=t.arch,
            arch_hash=t.arch_hash,
            accuracy=t.accuracy,
            accuracy_source=t.accuracy_source,
            latency_ms=t.latency_ms,
            latency_source=t.latency_source,
            latencies=t.latencies,
            macs=t.macs,
            params=t.params,
            created_at=t.created_at,
        )
