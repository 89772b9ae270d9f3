"""Where a device's latencies come from, for a given search space.

* A ``table`` device of a bundled benchmark table covering the whole space
  (NAS-Bench-201): the table's real measurements.
* Any device with a stored latency model for the space: the model's predictions
  (the adapted meta-learned predictor, fitted from <=10 measurements).

Real measurements stored for an architecture always win over predictions in
answers (see ``service.domain.subnets``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db import Device, PredictorModel, Supernet
from service.domain.errors import DomainError
from service.domain.predictor_records import scope_of

if TYPE_CHECKING:
    from nas.evaluators import TabularLatency
    from predictors.latency import DeviceLatencyPredictor

__all__ = ["check_latency_available", "has_table_latency", "latency_source"]


def has_table_latency(space_name: str, device: Device) -> bool:
    """True when a bundled table gives ``device``'s latency for every arch of the space."""
    if device.kind != "table" or space_name != "nb201":
        return False
    from supernets.tables import nb201_latency

    return _table_device(device) in nb201_latency().latency


def _table_device(device: Device) -> str:
    return str(device.properties.get("table_device", device.name))


def latency_source(
    session: Session, supernet: Supernet, device: Device
) -> TabularLatency | DeviceLatencyPredictor:
    """The latency model the search uses for ``device`` on ``supernet``'s space:
    the bundled table where it covers the space, else the newest stored model."""
    if has_table_latency(supernet.space_name, device):
        from nas.evaluators import TabularLatency

        return TabularLatency(_table_device(device), supernet.space_name)
    check_latency_available(session, supernet, device)
    row = session.scalar(
        select(PredictorModel)
        .where(
            PredictorModel.kind == "latency",
            PredictorModel.scope == scope_of(device_id=device.id),
            PredictorModel.space_name == supernet.space_name,
        )
        .order_by(PredictorModel.version.desc())
        .limit(1)
    )
    assert row is not None and row.blob is not None
    return _device_model(row.blob, device.name)


def _device_model(blob: bytes, device_name: str) -> DeviceLatencyPredictor:
    from predictors.latency import DeviceLatencyPredictor

    model = DeviceLatencyPredictor.from_bytes(blob)
    # The search names devices by the model's ``device`` attribute.
    model.device = device_name
    return model


def check_latency_available(session: Session, supernet: Supernet, device: Device) -> None:
    """Raise a DomainError saying what to run when ``device`` has no latency source."""
    if has_table_latency(supernet.space_name, device):
        return
    stored = session.scalar(
        select(PredictorModel.id).where(
            PredictorModel.kind == "latency",
            PredictorModel.scope == scope_of(device_id=device.id),
            PredictorModel.space_name == supernet.space_name,
        )
    )
    if stored is None:
        raise DomainError(
            f"device {device.name!r} has no latency model for space {supernet.space_name!r}: "
            f"register one with `hwnas device measure {device.name}` (this machine) or "
            f"`hwnas device submit {device.name}` (latencies measured elsewhere)"
        )
