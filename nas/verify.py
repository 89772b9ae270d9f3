"""Measured verification: a few true latencies correct the device model and
check the answer before it is given.

A few-shot latency model is wrong by a few percent to tens of percent on a new
device, and a search that maximises accuracy under a budget aims exactly where
those errors decide: at the predicted boundary. With ``measure_latency`` (a
callable ``arch -> ms``, or ``{device: callable}``) the search measures the
true latency of at most ``max_latency_measurements`` distinct architectures:

* during the search, at most half of them (rounded down): after each round,
  the current best architecture when its latency was never measured. Each
  measurement refits a *residual correction* of the device model, one factor
  per device: the geometric mean of ``measured / predicted`` over the
  measurements (a constant error in log space is the one parameter a handful
  of points pins down; the verification below, not the correction, is what
  guarantees the answer). Predictions and their std are multiplied by it, so
  later rounds propose under the corrected model;
* before answering, the rest: the best architecture under the corrected model
  is measured, and again after each measurement, until the best one has a
  measured latency (within budget, since it is the best *feasible* one) or
  the cap is reached.

The answer then comes only from architectures measured on every device that
has a callable: ``best`` fits the budget as measured, or is None, and then
``closest`` lists the measured ones with their measured latencies. A
measurement that raises counts toward the cap and is recorded with its error;
it never ends the search. Measurements live in the Optuna study (one study
attr per architecture, :meth:`nas.study.SearchStudy.record_latency`), so a
resumed or shared search reuses them and measures nothing twice (two workers
sharing a study may each measure one more than the cap, as they may each
overshoot ``n_evaluations`` by one).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.candidates import Featurizer
from nas.constraints import Constraints
from nas.records import Evaluation
from nas.study import SearchStudy

if TYPE_CHECKING:
    from supernets.spaces import Arch

__all__ = [
    "DEFAULT_MAX_LATENCY_MEASUREMENTS",
    "LatencyMeasure",
    "LatencyMeasurement",
    "Verifier",
    "measure_map",
]

#: Cap when ``measure_latency`` is given without ``max_latency_measurements``: the
#: number of reference measurements a device is registered with.
DEFAULT_MAX_LATENCY_MEASUREMENTS = 10

#: A true latency measurement: ``arch -> ms`` on one device.
LatencyMeasure = Callable[[Any], float]


@dataclass(frozen=True)
class LatencyMeasurement:
    """The measured latencies of one architecture (and the devices that failed)."""

    arch_hash: str
    latency_ms: Mapping[str, float] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"latency_ms": dict(self.latency_ms), "errors": dict(self.errors)}

    @classmethod
    def from_dict(cls, arch_hash: str, data: Mapping[str, Any]) -> LatencyMeasurement:
        return cls(
            arch_hash,
            {str(d): float(v) for d, v in dict(data.get("latency_ms", {})).items()},
            {str(d): str(e) for d, e in dict(data.get("errors", {})).items()},
        )


def measure_map(
    measure_latency: LatencyMeasure | Mapping[str, LatencyMeasure] | None,
    max_latency_measurements: int | None,
    devices: list[str],
    constraints: Constraints,
) -> tuple[dict[str, LatencyMeasure], int]:
    """Validated ``({device: callable}, cap)`` from ``run_search``'s arguments;
    ``({}, 0)`` without a callable."""
    if max_latency_measurements is not None:
        if isinstance(max_latency_measurements, bool) or not isinstance(
            max_latency_measurements, int
        ):
            raise ValueError(
                f"max_latency_measurements must be an integer, got {max_latency_measurements!r}"
            )
        if max_latency_measurements < 0:
            raise ValueError(
                f"max_latency_measurements must be >= 0, got {max_latency_measurements}"
            )
        if measure_latency is None:
            raise ValueError(
                "max_latency_measurements was given without measure_latency: give a callable "
                "arch -> ms (or {device: callable}) that measures the true latency"
            )
    if measure_latency is None:
        return {}, 0
    if isinstance(measure_latency, Mapping):
        measures = {str(d): m for d, m in measure_latency.items()}
        if not measures:
            raise ValueError("measure_latency mapping is empty: give at least one device")
    else:
        measures = {devices[0]: measure_latency}
    for dev, fn in measures.items():
        if dev not in devices:
            raise ValueError(
                f"measure_latency for device {dev!r}, which has no latency model; "
                f"devices: {devices}"
            )
        if dev not in constraints.latency_ms:
            raise ValueError(
                f"measure_latency for device {dev!r}, which has no latency budget: "
                "measurements verify budgets"
            )
        if not callable(fn):
            raise ValueError(
                f"measure_latency for device {dev!r} must be callable (arch -> ms), "
                f"got {type(fn).__name__}"
            )
    if max_latency_measurements is None:
        return measures, DEFAULT_MAX_LATENCY_MEASUREMENTS
    return measures, max_latency_measurements


class Verifier:
    """Measurements of one search, the model correction they give, and the
    view of the evaluations they imply (see the module docstring)."""

    def __init__(
        self,
        measures: Mapping[str, LatencyMeasure],
        cap: int,
        study: SearchStudy,
        featurizer: Featurizer,
    ) -> None:
        self.measures = dict(measures)
        self.cap = cap
        self.study = study
        self.featurizer = featurizer
        self.measurements: dict[str, LatencyMeasurement] = {}

    @property
    def active(self) -> bool:
        return bool(self.measures) and self.cap > 0

    @property
    def n_used(self) -> int:
        return len(self.measurements)

    @property
    def remaining(self) -> int:
        return max(0, self.cap - self.n_used)

    @property
    def in_search(self) -> int:
        """Measurements allowed before the final verification (half the cap)."""
        return self.cap // 2

    def load(self) -> None:
        """Read the study's measurements (other workers', earlier runs')."""
        stored = {
            h: LatencyMeasurement.from_dict(h, data)
            for h, data in self.study.latency_measurements().items()
        }
        if stored.keys() != self.measurements.keys():
            self.measurements = stored
            self._refit()

    def verified(self, record: Evaluation) -> bool:
        """Measured without error on every device with a callable."""
        m = self.measurements.get(record.arch_hash)
        return m is not None and all(d in m.latency_ms for d in self.measures)

    def measure(self, arch: Arch, arch_hash: str) -> LatencyMeasurement:
        """Measure ``arch`` on every device with a callable (one use of the cap,
        whatever happens); store it in the study and refit the correction."""
        if arch_hash in self.measurements:
            return self.measurements[arch_hash]
        latency: dict[str, float] = {}
        errors: dict[str, str] = {}
        for dev, fn in self.measures.items():
            try:
                ms = float(fn(arch))
                if not (math.isfinite(ms) and ms > 0):
                    raise ValueError(f"measurement returned {ms!r} ms (must be > 0 and finite)")
                latency[dev] = ms
            except Exception as exc:
                errors[dev] = f"{type(exc).__name__}: {exc}"[:2000]
        found = LatencyMeasurement(arch_hash, latency, errors)
        self.study.record_latency(arch_hash, found.to_dict())
        self.measurements[arch_hash] = found
        self._refit()
        return found

    def _refit(self) -> None:
        """The residual correction: per predicted device, the geometric mean of
        measured / predicted over the successful measurements."""
        scale: dict[str, float] = {}
        for j, (dev, model) in enumerate(self.featurizer.latency.items()):
            if model.measured:
                continue
            ratios = []
            for m in self.measurements.values():
                if dev in m.latency_ms:
                    predicted = self.featurizer.raw_latency(m.arch_hash)
                    if predicted is not None and predicted[j] > 0:
                        ratios.append(math.log(m.latency_ms[dev] / predicted[j]))
            if ratios:
                scale[dev] = float(np.exp(np.mean(ratios)))
        self.featurizer.set_scale(scale)

    def view(
        self, record: Evaluation, constraints: Constraints, z: float | None = None
    ) -> Evaluation:
        """``record`` with the latencies known now: measured where measured, the
        corrected prediction (and std) elsewhere; violations recomputed on the
        bound ``latency + z * std`` (default: the search's exploring ``z``)."""
        if not self.measurements and z is None:
            return record
        cands = self.featurizer.featurize([record.arch], [record.arch_hash])
        latency, std = dict(record.latency_ms), dict(record.latency_std_ms)
        measured = dict(record.latency_measured)
        for j, dev in enumerate(self.featurizer.devices):
            if not measured.get(dev):
                latency[dev] = float(cands.latency[0, j])
                if dev in std:
                    std[dev] = float(cands.std[0, j])
        m = self.measurements.get(record.arch_hash)
        errors: dict[str, str] = {}
        if m is not None:
            for dev, ms in m.latency_ms.items():
                latency[dev], measured[dev] = ms, True
                std.pop(dev, None)
            errors = dict(m.errors)
        z = self.featurizer.z if z is None else z
        bounds = {d: latency[d] + z * std.get(d, 0.0) for d in latency}
        try:
            parts = constraints.violations(bounds, record.macs, record.params)
        except ValueError:  # an external trial without MACs / params: not feasible
            parts = {name: np.array(math.inf) for name in constraints.bounds()}
        return replace(
            record,
            latency_ms=latency,
            latency_measured=measured,
            latency_std_ms=std,
            latency_errors=errors,
            violations={k: float(v) for k, v in parts.items()},
        )
