"""Where a device's latencies come from, for a given search space.

* A ``table`` device of a bundled benchmark table covering the whole space
  (NAS-Bench-201): the table's real measurements.
* Any device with a stored latency model for the space: the model's predictions
  (the adapted meta-learned predictor, fitted from <=10 measurements).

Real measurements stored for an architecture always win over predictions in
answers (see ``service.domain.subnets``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar, cast

import numpy as np
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from service.db import Device, LatencyMeasurement, PredictorModel, Supernet
from service.domain.errors import DomainError
from service.domain.predictor_records import scope_of

if TYPE_CHECKING:
    from nas.evaluators import TabularLatency
    from predictors.latency import DeviceLatencyPredictor

_M = TypeVar("_M")

__all__ = [
    "ModelCache",
    "check_budget",
    "check_latency_available",
    "has_table_latency",
    "latency_source",
    "predicted_vs_measured",
]


def has_table_latency(space_name: str, device: Device) -> bool:
    """True when a bundled table gives ``device``'s latency for every arch of the space."""
    if device.kind != "table" or space_name != "nb201":
        return False
    from supernets.tables import nb201_latency

    return _table_device(device) in nb201_latency().latency


def _table_device(device: Device) -> str:
    return str(device.properties.get("table_device", device.name))


class ModelCache:
    """Latency models loaded once and reused (a worker keeps one across its
    jobs): keyed by the stored model row, or the bundled table. Bounded: the
    least recently used beyond ``max_models`` is dropped. Reusing the very
    objects is also what lets nas reuse their featurised architectures."""

    def __init__(self, max_models: int = 16) -> None:
        if max_models < 1:
            raise ValueError(f"max_models must be >= 1, got {max_models}")
        self.max_models = max_models
        self._models: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable, load: Callable[[], _M]) -> _M:
        model = self._models.pop(key) if key in self._models else load()
        self._models[key] = model
        while len(self._models) > self.max_models:
            self._models.popitem(last=False)
        return cast("_M", model)

    def __len__(self) -> int:
        return len(self._models)


def latency_source(
    session: Session, supernet: Supernet, device: Device, cache: ModelCache | None = None
) -> TabularLatency | DeviceLatencyPredictor:
    """The latency model the search uses for ``device`` on ``supernet``'s space:
    the bundled table where it covers the space, else the newest stored model
    (taken from ``cache`` when it holds it)."""
    if cache is None:  # (an empty cache is falsy: test for None)
        cache = ModelCache(1)
    if has_table_latency(supernet.space_name, device):
        from nas.evaluators import TabularLatency

        table, space_name = _table_device(device), supernet.space_name
        return cache.get(
            ("table", table, space_name, device.name), lambda: TabularLatency(table, space_name)
        )
    row = session.scalar(
        _stored_models(supernet, device).order_by(PredictorModel.version.desc()).limit(1)
    )
    if row is None:
        raise _no_latency_error(supernet, device)
    blob = row.blob
    assert blob is not None
    return cache.get(("model", row.id, device.name), lambda: _device_model(blob, device.name))


def _stored_models(supernet: Supernet, device: Device) -> Select[Any]:
    """The stored latency models of ``device`` for ``supernet``'s space."""
    return select(PredictorModel).where(
        PredictorModel.kind == "latency",
        PredictorModel.scope == scope_of(device_id=device.id),
        PredictorModel.space_name == supernet.space_name,
    )


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
        _stored_models(supernet, device).with_only_columns(PredictorModel.id).limit(1)
    )
    if stored is None:
        raise _no_latency_error(supernet, device)


def _no_latency_error(supernet: Supernet, device: Device) -> DomainError:
    from service.orchestration.registration import registration_hint

    return DomainError(
        f"device {device.name!r} has no latency model for space {supernet.space_name!r}: "
        + registration_hint(device, supernet.space_name)
    )


#: Random subnets whose predicted latency bounds "the fastest predicted subnet"
#: (with the space's smallest subnet, when it has one).
_FASTEST_SAMPLE = 2000


@cache
def _computing_cells() -> np.ndarray:
    """Which rows of the bundled NAS-Bench-201 latency table are cells whose
    output depends on their input (:attr:`supernets.NB201Arch.computes_anything`);
    cached per process like the table itself (read-only)."""
    from supernets.spaces import NB201Arch
    from supernets.tables import nb201_latency

    strings = nb201_latency().arch_strs or ()
    mask = np.array([NB201Arch.from_string(a).computes_anything for a in strings], dtype=bool)
    mask.setflags(write=False)
    return mask


def _fastest_computing_cell_ms(table_device: str) -> float:
    """The fastest tabulated latency among NAS-Bench-201 cells that compute anything."""
    from supernets.tables import nb201_latency

    return float(np.min(nb201_latency().latency[table_device][_computing_cells()]))


def check_budget(
    session: Session, supernet: Supernet, device: Device, budget_ms: float | None
) -> list[str]:
    """Check, before a search is queued, that ``device`` has latencies for the
    supernet's space and that ``budget_ms`` can be met.

    Refused (DomainError, naming the latency): a budget below the fastest
    subnet of a bundled table, or below the measured latency of the space's
    smallest subnet. Accepted with a warning (returned): a budget below the
    fastest *predicted* latency, since the prediction may be wrong and the
    search's real measurements may still find a subnet.
    """
    check_latency_available(session, supernet, device)
    if budget_ms is None:
        return []
    space_name = supernet.space_name
    if has_table_latency(space_name, device):
        fastest = _fastest_computing_cell_ms(_table_device(device))
        if budget_ms < fastest:
            raise DomainError(
                f"no subnet of {space_name} meets {budget_ms} ms on {device.name}: the fastest "
                f"cell that computes anything runs in {fastest:.4g} ms (bundled measurements; "
                "cells with no path from input to output score chance accuracy)"
            )
        return []
    from supernets import space_from_config

    space = space_from_config(space_name, supernet.space_config)
    smallest = space.min_arch() if hasattr(space, "min_arch") else None
    if smallest is not None:
        measured = session.scalar(
            select(func.min(LatencyMeasurement.latency_ms)).where(
                LatencyMeasurement.device_id == device.id,
                LatencyMeasurement.space_name == space_name,
                LatencyMeasurement.arch_hash == space.arch_hash(smallest),
            )
        )
        if measured is not None and budget_ms < measured:
            raise DomainError(
                f"no subnet of {space_name} meets {budget_ms} ms on {device.name}: its smallest "
                f"subnet measured {measured:.4g} ms there"
            )
    from nas.latency import BatchLatency

    model = BatchLatency(latency_source(session, supernet, device), space, device.name)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(_FASTEST_SAMPLE)]
    archs += [smallest] if smallest is not None else []
    fastest = float(np.min(model.predict_archs(archs)))
    if budget_ms < fastest:
        return [
            f"{budget_ms} ms is below the fastest predicted latency of {space_name} on "
            f"{device.name} ({fastest:.4g} ms); the search will measure what it can, but may "
            "find nothing within the budget"
        ]
    return []


def predicted_vs_measured(session: Session, supernet: Supernet, device: Device) -> dict[str, Any]:
    """Every latency stored for ``device`` in ``supernet``'s space next to what
    the search's latency source (:func:`latency_source`) predicts for the same
    architecture: the data of a predicted-vs-measured plot.

    Reference measurements are flagged: the model was fitted on them, so only
    the other points show how well it generalises.
    """
    from nas.latency import BatchLatency
    from service.domain.devices import list_measurements
    from supernets import space_from_config

    source = latency_source(session, supernet, device)
    space = space_from_config(supernet.space_name, supernet.space_config)
    rows = list_measurements(session, device, space_name=supernet.space_name)
    predicted = BatchLatency(source, space, device.name).predict_archs(
        [space.validate(r.arch) for r in rows]
    )
    return {
        "device": device.name,
        "supernet": supernet.name,
        "space": supernet.space_name,
        "source": "table" if has_table_latency(supernet.space_name, device) else "model",
        "points": [
            {
                "measurement_id": r.id,
                "arch_hash": r.arch_hash,
                "measured_ms": r.latency_ms,
                "predicted_ms": float(p),
                "is_reference": r.is_reference,
                "method": r.method,
            }
            for r, p in zip(rows, predicted, strict=True)
        ],
    }
