"""The answers of a search, defined once: best under the constraints, the closest
when nothing meets them, and the Pareto front; plus hypervolume.

These are the *reference* implementations: :func:`nas.run_search` answers
through them, and any other implementation (the service answers from its
database with indexed SQL) must return what they return.

Records
-------
A record is a :class:`nas.records.Evaluation`, a :class:`nas.records.Proposal`
or a plain mapping with the same field names, so a database row needs no
conversion::

    {"accuracy": 91.2,                       # real accuracy (None: see below)
     "latency_ms": {"pixel3": 4.1},          # {device: ms}
     "latency_measured": {"pixel3": False},  # optional, default False
     "latency_std_ms": {"pixel3": 0.3},      # optional: std of a predicted latency
     "macs": 3.1e8, "params": 2.4e6}         # optional (needed only when bounded)

``accuracy`` falls back on ``predicted_accuracy`` for prediction-only records
(proposals). The functions return the records they were given, unchanged.

The rules
---------
*Usable*: a record takes part only if its accuracy is a finite number.

*Effective latency* on a device: the reported latency; for a *predicted*
latency with a standard deviation (``latency_std_ms[device]`` present and
``latency_measured[device]`` not true), the one-sided upper bound
``latency + z * std``, ``z = Φ⁻¹(feasibility_confidence)``
(:func:`nas.constraints.confidence_z`): the record meets a budget with
probability at least ``feasibility_confidence``. A missing or non-finite
latency (or std) on a device with a budget, or missing MACs / params under a
MACs / params bound, make the violation infinite: it cannot be shown feasible.

*Violation*: the sum over constraints of ``max(0, value / bound - 1)``
(:meth:`nas.constraints.Constraints.total_violation`, on effective latencies).
*Feasible*: violation exactly 0.

*Best* (:func:`best`): the feasible usable record with the highest accuracy;
ties by lower reported latency on the tie-break device (``device``, else the
first device with a budget; no latency tie-break without one), then by
position in the input (earlier wins). The loop passes its evaluations in
trial-number order; a database implementation orders by its row id.

*Closest* (:func:`closest`): usable records with a finite violation, by
increasing violation, ties by higher accuracy, then lower reported latency on
the tie-break device, then input position; the first ``n``.

*Pareto front* (:func:`pareto_front`): usable records with a finite reported
latency on ``device`` (and, given ``constraints``, feasible), sorted by
increasing latency; a record is on the front when its accuracy is strictly
higher than that of every record before it. Of records with equal latency
and accuracy only the earliest in the input is kept.

Accuracy in a record is always a real evaluation, except in proposals.
Latency may be measured or predicted (``latency_measured[device]``); answers
carry a ``labels`` dict that says which, and fall back on *predicted*
candidates only when asked to and only when no real evaluation meets the
constraints.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import numpy as np

from nas.constraints import DEFAULT_FEASIBILITY_CONFIDENCE, Constraints, confidence_z
from nas.records import Evaluation, Proposal

__all__ = [
    "BudgetAnswer",
    "Record",
    "answer",
    "best",
    "best_under_budget",
    "closest",
    "effective_latency",
    "hypervolume_2d",
    "hypervolume_improvement",
    "pareto_front",
    "violation",
]

#: What the rules accept: our records or a plain row with the same field names.
Record = Evaluation | Proposal | Mapping[str, Any]
R = TypeVar("R", bound=Record)


def _field(record: Record, name: str, default: Any = None) -> Any:
    if isinstance(record, Mapping):
        return record.get(name, default)
    return getattr(record, name, default)


def _per_device(record: Record, name: str) -> Mapping[str, Any]:
    value = _field(record, name) or {}
    if not isinstance(value, Mapping):
        raise ValueError(
            f"record field {name!r} must be a mapping {{device: value}}, got {type(value).__name__}"
        )
    return value


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _latency(record: Record, device: str | None) -> float | None:
    """Reported latency on ``device`` (None when absent or non-finite)."""
    if device is None:
        return None
    return _finite(_per_device(record, "latency_ms").get(device))


def _accuracy(record: Record) -> float | None:
    value = _field(record, "accuracy")
    if value is None:  # a prediction-only record
        value = _field(record, "predicted_accuracy")
    return _finite(value)


def effective_latency(
    record: Record,
    device: str,
    feasibility_confidence: float = DEFAULT_FEASIBILITY_CONFIDENCE,
) -> float | None:
    """The latency that is checked against a budget (see the module docstring):
    the reported one, or its one-sided upper bound when it is predicted with a
    std; None when it cannot be known."""
    lat = _latency(record, device)
    if lat is None:
        return None
    if _per_device(record, "latency_measured").get(device):
        return lat
    stds = _per_device(record, "latency_std_ms")
    if device not in stds or stds[device] is None:
        return lat
    std = _finite(stds[device])
    if std is None or std < 0:
        return None
    return lat + confidence_z(feasibility_confidence) * std


def violation(
    record: Record,
    constraints: Constraints,
    feasibility_confidence: float = DEFAULT_FEASIBILITY_CONFIDENCE,
) -> float:
    """Total relative violation of ``record`` (0 when feasible, inf when it cannot
    be shown feasible); see the module docstring."""
    lat: dict[str, float] = {}
    for dev in constraints.latency_ms:
        value = effective_latency(record, dev, feasibility_confidence)
        if value is None:
            return math.inf
        lat[dev] = value
    macs, params = _finite(_field(record, "macs")), _finite(_field(record, "params"))
    if (constraints.max_macs is not None and macs is None) or (
        constraints.max_params is not None and params is None
    ):
        return math.inf
    return float(constraints.total_violation(lat, macs, params))


def _tie_device(constraints: Constraints, device: str | None) -> str | None:
    return device if device is not None else next(iter(constraints.latency_ms), None)


def _scored(
    records: Iterable[R], constraints: Constraints, feasibility_confidence: float
) -> list[tuple[int, R, float, float]]:
    """``(position, record, accuracy, violation)`` of the usable records."""
    confidence_z(feasibility_confidence)  # validated even when no record needs it
    out = []
    for pos, rec in enumerate(records):
        acc = _accuracy(rec)
        if acc is not None:
            out.append((pos, rec, acc, violation(rec, constraints, feasibility_confidence)))
    return out


def _latency_key(record: Record, device: str | None) -> float:
    lat = _latency(record, device)
    return math.inf if lat is None else lat


def best(
    records: Iterable[R],
    constraints: Constraints,
    *,
    device: str | None = None,
    feasibility_confidence: float = DEFAULT_FEASIBILITY_CONFIDENCE,
) -> R | None:
    """The most accurate feasible record, or None (rule and tie-breaks: module docstring)."""
    tie = _tie_device(constraints, device)
    feasible = [
        (-acc, _latency_key(rec, tie), pos, rec)
        for pos, rec, acc, v in _scored(records, constraints, feasibility_confidence)
        if v <= 0.0
    ]
    return min(feasible, key=lambda t: t[:3])[3] if feasible else None


def closest(
    records: Iterable[R],
    constraints: Constraints,
    n: int = 3,
    *,
    device: str | None = None,
    feasibility_confidence: float = DEFAULT_FEASIBILITY_CONFIDENCE,
) -> list[R]:
    """The ``n`` records nearest to feasible (rule and tie-breaks: module docstring)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    tie = _tie_device(constraints, device)
    ranked = sorted(
        (v, -acc, _latency_key(rec, tie), pos, rec)
        for pos, rec, acc, v in _scored(records, constraints, feasibility_confidence)
        if math.isfinite(v)
    )
    return [t[4] for t in ranked[:n]]


def pareto_front(
    records: Iterable[R],
    device: str,
    *,
    constraints: Constraints | None = None,
    feasibility_confidence: float = DEFAULT_FEASIBILITY_CONFIDENCE,
) -> list[R]:
    """Non-dominated records (max accuracy, min latency on ``device``), by latency.

    With ``constraints``, infeasible records are dropped first (the *feasible*
    front). Rule and tie-breaks: module docstring.
    """
    rows = []
    for pos, rec, acc, v in _scored(records, constraints or Constraints(), feasibility_confidence):
        lat = _latency(rec, device)
        if lat is not None and v <= 0.0:
            rows.append((lat, -acc, pos, rec))
    rows.sort(key=lambda t: t[:3])
    front: list[R] = []
    best_acc = -math.inf
    for _, neg_acc, _, rec in rows:
        if -neg_acc > best_acc:
            front.append(rec)
            best_acc = -neg_acc
    return front


@dataclass(frozen=True)
class BudgetAnswer:
    """Answer to "the most accurate architecture under the constraints".

    ``best`` is a record meeting every constraint, or ``None``. ``source`` says
    whether it comes from real evaluations (``"measured"``: accuracy is real)
    or, as a fallback, from predictor proposals (``"predicted"``). When nothing
    is feasible, ``closest`` lists the real evaluations nearest to feasible
    (:func:`closest`), marked infeasible by ``feasible=False``. ``budget_ms``
    is the latency budget on ``device`` (None if that device has none).
    """

    device: str
    budget_ms: float | None
    best: Record | None
    source: Literal["measured", "predicted"] | None
    feasible: bool
    closest: list[Record] = field(default_factory=list)
    message: str = ""

    @property
    def labels(self) -> dict[str, str]:
        """How each reported number was obtained: "measured" or "predicted"."""
        if self.best is None:
            return {}
        measured = _per_device(self.best, "latency_measured").get(self.device, False)
        return {
            "accuracy": "measured" if self.source == "measured" else "predicted",
            "latency_ms": "measured" if measured and self.source == "measured" else "predicted",
        }


def answer(
    records: Iterable[Record],
    constraints: Constraints,
    device: str,
    *,
    proposals: Sequence[Record] = (),
    n_closest: int = 3,
    feasibility_confidence: float = DEFAULT_FEASIBILITY_CONFIDENCE,
) -> BudgetAnswer:
    """:func:`best` of the real evaluations; else, if given, the best of the
    ``proposals`` (predicted candidates, labelled predicted) with the closest
    real evaluations; else the closest, marked infeasible."""
    records = list(records)
    budget = constraints.latency_ms.get(device)
    kw: dict[str, Any] = {"device": device, "feasibility_confidence": feasibility_confidence}
    found = best(records, constraints, **kw)
    if found is not None:
        return BudgetAnswer(device, budget, found, "measured", True, [], "")
    near = closest(records, constraints, n_closest, **kw)
    what = constraints.describe()
    predicted = best(proposals, constraints, **kw)
    if predicted is not None:
        msg = f"no real evaluation meets {what}; answering with a predicted candidate"
        return BudgetAnswer(device, budget, predicted, "predicted", True, near, msg)
    msg = (
        f"no architecture meets {what}; returning the {len(near)} closest real "
        "evaluation(s), marked infeasible"
        if near
        else f"no evaluation has a latency for {device!r} and meets {what}"
    )
    return BudgetAnswer(device, budget, None, None, False, near, msg)


def best_under_budget(
    records: Iterable[Record],
    device: str,
    budget_ms: float,
    *,
    max_macs: float | None = None,
    max_params: float | None = None,
    proposals: Sequence[Record] = (),
    n_closest: int = 3,
    feasibility_confidence: float = DEFAULT_FEASIBILITY_CONFIDENCE,
) -> BudgetAnswer:
    """Most accurate real evaluation with latency on ``device`` <= ``budget_ms``
    (:func:`answer` for one device's budget and optional cost limits).

    ``proposals`` (e.g. ``SearchResult.proposals``) are predicted candidates,
    used only when no real evaluation is feasible, and labelled predicted.
    """
    return answer(
        records,
        Constraints({device: budget_ms}, max_macs, max_params),
        device,
        proposals=proposals,
        n_closest=n_closest,
        feasibility_confidence=feasibility_confidence,
    )


# -- hypervolume ------------------------------------------------------------------------
def _front_steps(
    latency: np.ndarray, accuracy: np.ndarray, ref: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Latencies and accuracies of the non-dominated points inside the reference box,
    sorted by latency (accuracy then strictly increases)."""
    ref_lat, ref_acc = ref
    keep = (latency < ref_lat) & (accuracy > ref_acc)
    lat, acc = latency[keep], accuracy[keep]
    order = np.lexsort((-acc, lat))
    lat, acc = lat[order], acc[order]
    if lat.size == 0:
        return lat, acc
    running = np.maximum.accumulate(acc)
    nondom = np.concatenate([[True], acc[1:] > running[:-1]])
    return lat[nondom], acc[nondom]


def hypervolume_2d(
    latency: Sequence[float] | np.ndarray,
    accuracy: Sequence[float] | np.ndarray,
    ref: tuple[float, float],
) -> float:
    """Area dominated by the points (min latency, max accuracy) inside the box
    bounded by ``ref = (ref_latency, ref_accuracy)``."""
    lat, acc = _front_steps(
        np.asarray(latency, dtype=np.float64), np.asarray(accuracy, dtype=np.float64), ref
    )
    if lat.size == 0:
        return 0.0
    widths = np.diff(np.append(lat, ref[0]))
    return float(np.sum(widths * (acc - ref[1])))


def hypervolume_improvement(
    front_latency: np.ndarray,
    front_accuracy: np.ndarray,
    cand_latency: np.ndarray,
    cand_accuracy: np.ndarray,
    ref: tuple[float, float],
) -> np.ndarray:
    """Hypervolume each candidate alone would add to the front (vectorised, ``(m,)``)."""
    f_lat, f_acc = _front_steps(
        np.asarray(front_latency, dtype=np.float64),
        np.asarray(front_accuracy, dtype=np.float64),
        ref,
    )
    ref_lat, ref_acc = ref
    # The front's dominated region has height h(x) = best accuracy among points with
    # latency <= x (ref_acc before the first one): piecewise constant on segments.
    starts = np.concatenate([[-np.inf], f_lat])
    ends = np.concatenate([f_lat, [ref_lat]])
    heights = np.concatenate([[ref_acc], f_acc])
    c_lat = np.asarray(cand_latency, dtype=np.float64)[:, None]
    c_acc = np.asarray(cand_accuracy, dtype=np.float64)[:, None]
    width = np.clip(np.minimum(ends, ref_lat) - np.maximum(starts, c_lat), 0.0, None)
    gain = np.clip(c_acc - heights, 0.0, None)
    return np.sum(width * gain, axis=1)
