"""Measured verification: a few true latencies correct the device model and
check the answer before it is given.

A few-shot latency model is wrong by a few percent to tens of percent on a new
device, and a search that maximises accuracy under a budget aims exactly where
those errors decide: at the predicted boundary. With ``measure_latency`` (a
callable ``arch -> ms``, or ``{device: callable}``) the search measures the
true latency of at most ``max_latency_measurements`` distinct architectures:

* during the search, at most half of them (rounded down): after each round,
  the current best architecture when its latency was never measured (its
  measurement corrects the model where the search is heading). Each
  measurement refits the *online correction* of the device model
  (:class:`nas.correction.LatencyCorrection`): the log residual
  ``measured / predicted`` as a Gaussian process over the encoding, partly
  common to the whole device and partly shared by similar architectures.
  Predictions and their std are corrected by it, so later rounds propose
  under the corrected model;
* before answering, the rest, one at a time (``SearchSettings.
  measurement_choice``): by default the evaluated architecture of largest
  expected gain, ``(accuracy - the best measured answer's) * P(fits)`` under
  the corrected model (:func:`by_expected_gain`), until none is expected to
  improve the answer or the cap is reached; or ("best") the best under the
  corrected model, until the best one has a measured latency.

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
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.candidates import Featurizer
from nas.constraints import Constraints, exploring_z
from nas.correction import LatencyCorrection
from nas.pareto import best, closest
from nas.records import Evaluation
from nas.study import SearchStudy

if TYPE_CHECKING:
    from supernets.spaces import Arch

__all__ = [
    "DEFAULT_MAX_LATENCY_MEASUREMENTS",
    "LatencyMeasure",
    "LatencyMeasurement",
    "Verifier",
    "best_exploring",
    "by_expected_gain",
    "closest_exploring",
    "expected_best",
    "fit_probability",
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


def _folded(record: Evaluation, z: float) -> Evaluation:
    """``record`` with each predicted latency replaced by ``latency + z * std``
    and no std left (a non-finite or negative std is kept: it stays unknowable)."""
    latency, std = dict(record.latency_ms), dict(record.latency_std_ms)
    for dev, sd in record.latency_std_ms.items():
        if not record.latency_measured.get(dev) and math.isfinite(sd) and sd >= 0:
            latency[dev] += z * std.pop(dev)
    return replace(record, latency_ms=latency, latency_std_ms=std)


def _judged(
    records: Sequence[Evaluation], confidence: float
) -> tuple[list[Evaluation], float, dict[int, Evaluation] | None]:
    """``records`` as :mod:`nas.pareto` can judge them at an exploring
    ``confidence`` in (0, 1): the records themselves at 0.5 or above; below it
    (an optimistic bound, which nas.pareto refuses for answers) copies whose
    latency is the bound itself, judged at 0.5, with the map back to the originals."""
    if confidence >= 0.5:
        return list(records), confidence, None
    z = exploring_z(confidence)
    folded = [_folded(r, z) for r in records]
    return folded, 0.5, {id(f): r for f, r in zip(folded, records, strict=True)}


def best_exploring(
    records: Sequence[Evaluation], constraints: Constraints, confidence: float, *, device: str
) -> Evaluation | None:
    """:func:`nas.pareto.best` at an exploring ``confidence`` (any value in (0, 1))."""
    judged, at, back = _judged(records, confidence)
    found = best(judged, constraints, device=device, feasibility_confidence=at)
    return found if found is None or back is None else back[id(found)]


def closest_exploring(
    records: Sequence[Evaluation],
    constraints: Constraints,
    n: int,
    confidence: float,
    *,
    device: str,
) -> list[Evaluation]:
    """:func:`nas.pareto.closest` at an exploring ``confidence`` (any value in (0, 1))."""
    judged, at, back = _judged(records, confidence)
    near = closest(judged, constraints, n, device=device, feasibility_confidence=at)
    return near if back is None else [back[id(e)] for e in near]


def fit_probability(
    record: Evaluation,
    constraints: Constraints,
    measured_devices: Collection[str],
    z_answer: float,
) -> float:
    """P(``record`` meets every constraint once measured on ``measured_devices``):
    normal in each latency still to be measured (its corrected mean and std);
    a latency that stays predicted must meet the answer's chance constraint
    (bound ``latency + z_answer * std``); MACs / params hold or not."""
    for name, violation in record.violations.items():
        if not name.startswith("latency_ms:") and violation > 0:
            return 0.0
    p = 1.0
    for dev, budget in constraints.latency_ms.items():
        lat = record.latency_ms.get(dev, math.inf)
        sd = record.latency_std_ms.get(dev, 0.0)
        sd = sd if math.isfinite(sd) and sd > 0 else 0.0
        if record.latency_measured.get(dev) or sd == 0.0:
            p *= float(lat <= budget)
        elif dev in measured_devices:
            p *= 0.5 * (1.0 + math.erf((budget - lat) / (sd * math.sqrt(2.0))))
        else:
            p *= float(lat + z_answer * sd <= budget)
    return p


def expected_best(
    accuracies: Sequence[float], probabilities: Sequence[float], floor: float
) -> float:
    """Expected accuracy of the answer after measuring architectures of these
    ``accuracies`` that each fit with these (independent) ``probabilities``:
    the most accurate one that fits, or ``floor`` when none beats it."""
    value, none_yet = 0.0, 1.0
    for acc, p in sorted(zip(accuracies, probabilities, strict=True), reverse=True):
        if acc <= floor:
            break
        value += none_yet * p * acc
        none_yet *= 1.0 - p
    return value + none_yet * floor


def by_expected_gain(
    records: Sequence[Evaluation],
    constraints: Constraints,
    measured_devices: Collection[str],
    z_answer: float,
    floor: float,
    k: int,
) -> list[Evaluation]:
    """At most ``k`` of ``records`` to measure, chosen greedily to raise the
    expected accuracy of the answer (:func:`expected_best` over ``floor``, the
    answer's accuracy without them) the most; stops when nothing raises it.

    With ``k = 1`` this is the record of largest ``(accuracy - floor) * P(fit)``
    (:func:`fit_probability`): the loop's next measurement. A larger ``k`` is
    a batch measured at once (a remote device's verification list), where a
    second long shot is worth less once a first one may already have fitted."""
    pool = [
        (r, p)
        for r in records
        if r.accuracy > floor
        and (p := fit_probability(r, constraints, measured_devices, z_answer)) > 0
    ]
    chosen: list[tuple[Evaluation, float]] = []
    current = floor
    while len(chosen) < k and pool:
        values = [
            expected_best(
                [c.accuracy for c, _ in chosen] + [r.accuracy],
                [q for _, q in chosen] + [p],
                floor,
            )
            for r, p in pool
        ]
        i = int(np.argmax(values))
        if values[i] <= current:
            break
        current = values[i]
        chosen.append(pool.pop(i))
    return [r for r, _ in chosen]


class Verifier:
    """Measurements of one search, the model correction they give, and the
    view of the evaluations they imply (see the module docstring)."""

    def __init__(
        self,
        measures: Mapping[str, LatencyMeasure],
        cap: int,
        study: SearchStudy,
        featurizer: Featurizer,
        correction: LatencyCorrection | None = None,
    ) -> None:
        self.measures = dict(measures)
        #: The unfitted correction (its settings); refitted on every measurement.
        self.correction = correction or LatencyCorrection()
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
        """The online correction of each predicted device's model, fitted on
        its successful measurements (:class:`nas.correction.LatencyCorrection`)."""
        corrections: dict[str, LatencyCorrection] = {}
        for j, (dev, model) in enumerate(self.featurizer.latency.items()):
            if model.measured:
                continue
            rows = []
            for m in self.measurements.values():
                raw = self.featurizer.raw(m.arch_hash)
                if dev in m.latency_ms and raw is not None and raw[1][j] > 0:
                    rows.append((raw[0], raw[1][j], raw[2][j], m.latency_ms[dev]))
            if rows:
                X, predicted, std, measured = (np.array(c) for c in zip(*rows, strict=True))
                corrections[dev] = self.correction.fit(X, predicted, std, measured)
        self.featurizer.set_corrections(corrections)

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
