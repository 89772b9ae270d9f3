"""Bounded, validated types for everything a caller may send.

Every name, list and number that reaches the database or the ML code has a
limit here, so that edge values (ids past a 32-bit column, NUL bytes, 10 MB
names, ``Infinity`` in a spec, objects where numbers belong) are refused with
a clear 4xx instead of failing deep inside with a 500.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

__all__ = [
    "MAX_DB_ID",
    "MAX_LATENCY_MS",
    "NAME_PATTERN",
    "DbId",
    "LatencyMs",
    "Name",
    "SpaceName",
    "Text",
]

#: Ids are 32-bit INTEGER columns on PostgreSQL; nothing larger can exist.
MAX_DB_ID = 2**31 - 1
#: A latency beyond this (about 2.8 hours) is a unit error, not a measurement.
MAX_LATENCY_MS = 1e7
#: Names of devices, supernets, tokens and jobs (see ``service.domain.names``).
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"

Name = Annotated[str, Field(min_length=1, max_length=128, pattern=NAME_PATTERN)]
SpaceName = Annotated[str, Field(min_length=1, max_length=64, pattern=NAME_PATTERN)]
Text = Annotated[str, Field(max_length=2000, pattern=r"^[^\x00]*$")]
DbId = Annotated[int, Field(ge=1, le=MAX_DB_ID)]
LatencyMs = Annotated[float, Field(gt=0, le=MAX_LATENCY_MS, allow_inf_nan=False)]
