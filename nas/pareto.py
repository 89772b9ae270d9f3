"""Pareto fronts, hypervolume and "best under B ms on device D", from real evaluations.

The functions take *records*: :class:`nas.records.Evaluation` objects or plain
mappings with the same field names (``accuracy``, ``latency_ms`` = ``{device:
ms}``, optionally ``macs``, ``params``, ``latency_measured``), so the service
can call them on rows from its database without converting to our types.

Accuracy in a record is always a real evaluation. Latency may be measured or
predicted (``latency_measured[device]``); answers carry a ``labels`` dict that
says which, and fall back on *predicted* candidates only when asked to and
only when no real evaluation meets the budget.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from nas.constraints import Constraints

__all__ = [
    "BudgetAnswer",
    "best_under_budget",
    "hypervolume_2d",
    "hypervolume_improvement",
    "pareto_front",
]


def _field(record: Any, name: str, default: Any = None) -> Any:
    if isinstance(record, Mapping):
        return record.get(name, default)
    return getattr(record, name, default)


def _latency(record: Any, device: str) -> float | None:
    lat = _field(record, "latency_ms") or {}
    value = lat.get(device)
    return None if value is None else float(value)


def _accuracy(record: Any) -> float | None:
    value = _field(record, "accuracy")
    if value is None:  # a prediction-only record
        value = _field(record, "predicted_accuracy")
    return None if value is None else float(value)


def _usable(records: Iterable[Any], device: str) -> list[tuple[Any, float, float]]:
    out = []
    for rec in records:
        lat, acc = _latency(rec, device), _accuracy(rec)
        if lat is not None and acc is not None and np.isfinite(lat) and np.isfinite(acc):
            out.append((rec, lat, acc))
    return out


def pareto_front(
    records: Iterable[Any], device: str, *, constraints: Constraints | None = None
) -> list[Any]:
    """Non-dominated records (max accuracy, min latency on ``device``), by latency.

    With ``constraints``, infeasible records are dropped first (the *feasible*
    front). Ties (same latency and accuracy) keep the first record.
    """
    rows = _usable(records, device)
    if constraints is not None:
        rows = [r for r in rows if _violation(r[0], constraints) <= 0.0]
    rows.sort(key=lambda r: (r[1], -r[2]))
    front, best_acc = [], -np.inf
    for rec, _, acc in rows:
        if acc > best_acc:
            front.append(rec)
            best_acc = acc
    return front


def _violation(record: Any, constraints: Constraints) -> float:
    lat = _field(record, "latency_ms") or {}
    missing = [d for d in constraints.latency_ms if d not in lat]
    if missing:  # no latency for a constrained device: cannot be shown feasible
        return float("inf")
    macs, params = _field(record, "macs"), _field(record, "params")
    if (constraints.max_macs is not None and macs is None) or (
        constraints.max_params is not None and params is None
    ):
        return float("inf")
    return float(constraints.total_violation(lat, macs, params))


@dataclass(frozen=True)
class BudgetAnswer:
    """Answer to "the most accurate architecture under ``budget_ms`` on ``device``".

    ``best`` is a record meeting every constraint, or ``None``. ``source`` says
    whether it comes from real evaluations (``"measured"``: accuracy is real)
    or, as a fallback, from predictor proposals (``"predicted"``). When nothing
    is feasible, ``closest`` lists the real evaluations nearest to feasible
    (smallest total relative violation), marked infeasible by ``feasible=False``.
    """

    device: str
    budget_ms: float
    best: Any | None
    source: Literal["measured", "predicted"] | None
    feasible: bool
    closest: list[Any] = field(default_factory=list)
    message: str = ""

    @property
    def labels(self) -> dict[str, str]:
        """How each reported number was obtained: "measured" or "predicted"."""
        if self.best is None:
            return {}
        measured = (_field(self.best, "latency_measured") or {}).get(self.device, False)
        return {
            "accuracy": "measured" if self.source == "measured" else "predicted",
            "latency_ms": "measured" if measured and self.source == "measured" else "predicted",
        }


def best_under_budget(
    records: Iterable[Any],
    device: str,
    budget_ms: float,
    *,
    max_macs: float | None = None,
    max_params: float | None = None,
    proposals: Sequence[Any] = (),
    n_closest: int = 3,
) -> BudgetAnswer:
    """Most accurate real evaluation with latency on ``device`` <= ``budget_ms``.

    ``proposals`` (e.g. ``SearchResult.proposals``) are predicted candidates,
    used only when no real evaluation is feasible, and labelled predicted.
    """
    constraints = Constraints({device: budget_ms}, max_macs, max_params)
    records = list(records)
    scored = [(rec, _violation(rec, constraints)) for rec in records if _accuracy(rec) is not None]
    feasible = [rec for rec, v in scored if v <= 0.0]
    if feasible:
        best = max(feasible, key=lambda r: _accuracy(r) or -np.inf)
        return BudgetAnswer(device, budget_ms, best, "measured", True, [], "")
    predicted = [p for p in proposals if _violation(p, constraints) <= 0.0]
    closest = [rec for rec, v in sorted(scored, key=lambda t: t[1]) if np.isfinite(v)][:n_closest]
    what = constraints.describe()
    if predicted:
        best = max(predicted, key=lambda r: _accuracy(r) or -np.inf)
        msg = f"no real evaluation meets {what}; answering with a predicted candidate"
        return BudgetAnswer(device, budget_ms, best, "predicted", True, closest, msg)
    msg = (
        f"no architecture meets {what}; returning the {len(closest)} closest real "
        "evaluation(s), marked infeasible"
        if closest
        else f"no evaluation has a latency for {device!r} and meets {what}"
    )
    return BudgetAnswer(device, budget_ms, None, None, False, closest, msg)


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
