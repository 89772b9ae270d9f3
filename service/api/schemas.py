"""Request bodies of the HTTP API; response bodies are the shared views of
:mod:`service.domain.views` (re-exported here)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from service.domain.devices import DEVICE_KINDS
from service.domain.views import DeviceOut, JobOut, PredictorOut, SupernetOut, TrialOut

__all__ = [
    "DeviceIn",
    "DeviceOut",
    "JobOut",
    "PredictorOut",
    "SupernetOut",
    "TrialOut",
]


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    kind: str = Field(default="remote", description=f"One of {', '.join(DEVICE_KINDS)}.")
    description: str = ""
    batch_size: int = Field(default=1, ge=1)
