"""Devices (latency targets) and their latency measurements."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import delete, func, insert, literal, select, update

if TYPE_CHECKING:
    from sqlalchemy import Table
from sqlalchemy.orm import Session

from service.db import Device, LatencyMeasurement, SearchJob, Supernet, Trial, TrialLatency
from service.domain.names import add_named, check_name, not_found
from service.domain.owners import LOCAL, Scope, check_changeable, restrict, sees

__all__ = [
    "DEVICE_KINDS",
    "MeasurementIn",
    "add_measurements",
    "create_device",
    "get_device",
    "list_devices",
    "list_measurements",
    "remove_device",
]

#: local-*: measured by hwnas on this host; remote: latencies submitted by the
#: user from elsewhere; table: a device of a bundled benchmark table.
DEVICE_KINDS = ("local-cpu", "local-onnxruntime", "local-cuda", "remote", "table")


@dataclass(frozen=True)
class MeasurementIn:
    """A latency measurement to store (validated on construction)."""

    space_name: str
    arch: dict[str, Any]
    arch_hash: str
    latency_ms: float
    method: str
    spread_ms: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    is_reference: bool = False

    def __post_init__(self) -> None:
        value = self.latency_ms
        if (
            not isinstance(value, int | float)
            or math.isnan(value)
            or math.isinf(value)
            or value <= 0
        ):
            raise ValueError(f"latency_ms must be a positive, finite number, got {value!r}")
        if self.spread_ms is not None and (math.isnan(self.spread_ms) or self.spread_ms < 0):
            raise ValueError(f"spread_ms must be non-negative, got {self.spread_ms!r}")
        if not self.method:
            raise ValueError("method (how the latency was measured) must be given")


def create_device(
    session: Session,
    name: str,
    *,
    kind: str,
    description: str = "",
    host: str | None = None,
    backend: str | None = None,
    threads: int | None = None,
    batch_size: int = 1,
    properties: dict[str, Any] | None = None,
    owner: str = LOCAL,
    bundled: bool = False,
) -> Device:
    check_name("device", name)
    if kind not in DEVICE_KINDS:
        raise ValueError(f"device kind must be one of {list(DEVICE_KINDS)}, got {kind!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    device = Device(
        name=name,
        kind=kind,
        description=description,
        host=host,
        backend=backend,
        threads=threads,
        batch_size=batch_size,
        properties=properties or {},
        owner=owner,
        bundled=bundled,
    )
    add_named(session, "device", device)
    return device


def get_device(session: Session, name: str, scope: Scope | None = None) -> Device:
    """The device called ``name``; one that ``scope`` does not see does not exist."""
    device = session.scalar(select(Device).where(Device.name == name))
    if device is None or not sees(scope, device):
        raise not_found(session, Device, "device", name, "hwnas device list", scope)
    return device


def list_devices(session: Session, scope: Scope | None = None) -> Sequence[Device]:
    return session.scalars(restrict(select(Device), Device, scope).order_by(Device.name)).all()


def remove_device(session: Session, name: str, scope: Scope | None = None) -> None:
    device = get_device(session, name, scope)
    check_changeable(device, "device")
    # Its measurements go with it: latencies they overrode fall back to the
    # trials' own; rows that only a measurement, or the trial's main device
    # (now gone from the trial), gave are dropped.
    rows = cast("Table", TrialLatency.__table__)
    session.execute(
        delete(rows).where(
            rows.c.device_name == name, (rows.c.own_ms.is_(None)) | rows.c.is_primary
        )
    )
    session.execute(
        update(rows)
        .where(rows.c.device_name == name)
        .values(latency_ms=rows.c.own_ms, source=rows.c.own_source)
    )
    session.delete(device)


def add_measurements(
    session: Session, device: Device, measurements: Sequence[MeasurementIn]
) -> list[LatencyMeasurement]:
    rows = [
        LatencyMeasurement(
            device_id=device.id,
            space_name=m.space_name,
            arch=m.arch,
            arch_hash=m.arch_hash,
            latency_ms=float(m.latency_ms),
            spread_ms=m.spread_ms,
            method=m.method,
            details=m.details,
            is_reference=m.is_reference,
        )
        for m in measurements
    ]
    session.add_all(rows)
    session.flush()
    for space_name, arch_hash in sorted({(m.space_name, m.arch_hash) for m in measurements}):
        _fold_measurement(session, device, space_name, arch_hash)
    return rows


def _fold_measurement(session: Session, device: Device, space_name: str, arch_hash: str) -> None:
    """Make the query rows of ``arch_hash`` on ``device`` use its smallest
    stored measurement (a measurement wins over any prediction or trial latency),
    adding rows for trials that had no latency on the device at all."""
    ms = session.scalar(
        select(func.min(LatencyMeasurement.latency_ms)).where(
            LatencyMeasurement.device_id == device.id,
            LatencyMeasurement.space_name == space_name,
            LatencyMeasurement.arch_hash == arch_hash,
        )
    )
    if ms is None:
        return
    rows = cast("Table", TrialLatency.__table__)
    of_space = select(Supernet.id).where(Supernet.space_name == space_name)
    session.execute(
        update(rows)
        .where(
            rows.c.device_name == device.name,
            rows.c.arch_hash == arch_hash,
            rows.c.supernet_id.in_(of_space),
        )
        .values(latency_ms=ms, source="measured")
    )
    has_row = (
        select(rows.c.trial_id)
        .where(rows.c.trial_id == Trial.id, rows.c.device_name == device.name)
        .exists()
    )
    missing = (
        select(
            Trial.id,
            literal(device.name),
            Trial.supernet_id,
            Trial.arch_hash,
            Trial.accuracy,
            literal(float(ms)),
            literal("measured"),
            literal(False),
            SearchJob.owner,
        )
        .outerjoin(SearchJob, SearchJob.id == Trial.job_id)
        .where(
            Trial.arch_hash == arch_hash,
            Trial.supernet_id.in_(of_space),
            Trial.accuracy.is_not(None),
            Trial.accuracy_source == "measured",
            ~has_row,
        )
    )
    session.execute(
        insert(rows).from_select(
            [
                "trial_id",
                "device_name",
                "supernet_id",
                "arch_hash",
                "accuracy",
                "latency_ms",
                "source",
                "is_primary",
                "owner",
            ],
            missing,
        )
    )


def list_measurements(
    session: Session,
    device: Device,
    *,
    space_name: str | None = None,
    arch_hash: str | None = None,
    limit: int | None = None,
) -> Sequence[LatencyMeasurement]:
    query = (
        select(LatencyMeasurement)
        .where(LatencyMeasurement.device_id == device.id)
        .order_by(LatencyMeasurement.id)
    )
    if space_name is not None:
        query = query.where(LatencyMeasurement.space_name == space_name)
    if arch_hash is not None:
        query = query.where(LatencyMeasurement.arch_hash == arch_hash)
    if limit is not None:
        query = query.limit(limit)
    return session.scalars(query).all()
