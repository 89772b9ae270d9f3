"""Hard constraints: latency per device, MACs, parameters.

A violation is measured *relative* to its bound (``value / bound - 1``, zero
when met) so that a latency overshoot in milliseconds and a MACs overshoot in
millions add up to one comparable number: "how far from feasible" is what
ranks the closest architectures when nothing can meet the constraints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

__all__ = [
    "DEFAULT_FEASIBILITY_CONFIDENCE",
    "DEFAULT_VERIFIED_FEASIBILITY_CONFIDENCE",
    "Constraints",
    "confidence_z",
    "exploring_z",
]

#: P(latency <= budget) an architecture with an uncertain latency must reach to
#: count as feasible (the search's and the reference answers' default).
DEFAULT_FEASIBILITY_CONFIDENCE = 0.9

#: The confidence a search explores at when measured latencies verify its
#: answer (:attr:`nas.settings.SearchSettings.verified_feasibility_confidence`):
#: optimistic, a little past the point prediction.
DEFAULT_VERIFIED_FEASIBILITY_CONFIDENCE = 0.3


@dataclass(frozen=True)
class Constraints:
    """Upper bounds; ``None`` / absent means unconstrained.

    ``latency_ms`` maps a device name to its latency budget in milliseconds.
    """

    latency_ms: Mapping[str, float] = field(default_factory=dict)
    max_macs: float | None = None
    max_params: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "latency_ms", {str(k): float(v) for k, v in self.latency_ms.items()}
        )
        for name, bound in self.bounds().items():
            if not np.isfinite(bound) or bound <= 0:
                raise ValueError(f"constraint {name!r} must be a positive number, got {bound}")

    @classmethod
    def of(
        cls,
        budget_ms: float | Mapping[str, float] | None,
        device: str | None = None,
        max_macs: float | None = None,
        max_params: float | None = None,
    ) -> Constraints:
        """Constraints from the loose arguments :func:`nas.run_search` has always
        taken: a budget for ``device`` (a number) or ``{device: ms}``, or None."""
        if budget_ms is None:
            per_device: dict[str, float] = {}
        elif isinstance(budget_ms, Mapping):
            per_device = {str(d): float(b) for d, b in budget_ms.items()}
        else:
            if device is None:
                raise ValueError("a single latency budget needs the device it applies to")
            per_device = {device: float(budget_ms)}
        return cls(per_device, max_macs, max_params)

    @property
    def needs_costs(self) -> bool:
        return self.max_macs is not None or self.max_params is not None

    def bounds(self) -> dict[str, float]:
        """Constraint name -> bound. Names are what Optuna trials store them under."""
        out = {f"latency_ms:{dev}": budget for dev, budget in self.latency_ms.items()}
        if self.max_macs is not None:
            out["macs"] = float(self.max_macs)
        if self.max_params is not None:
            out["params"] = float(self.max_params)
        return out

    def violations(
        self,
        latency_ms: Mapping[str, np.ndarray | float],
        macs: np.ndarray | float | None = None,
        params: np.ndarray | float | None = None,
    ) -> dict[str, np.ndarray]:
        """Relative violation per constraint (``max(0, value / bound - 1)``)."""
        values: dict[str, np.ndarray | float | None] = {
            f"latency_ms:{dev}": latency_ms.get(dev) for dev in self.latency_ms
        }
        values["macs"], values["params"] = macs, params
        out: dict[str, np.ndarray] = {}
        for name, bound in self.bounds().items():
            value = values[name]
            if value is None:
                raise ValueError(f"constraint {name!r} needs a value (missing latency or cost)")
            out[name] = np.maximum(0.0, np.asarray(value, dtype=np.float64) / bound - 1.0)
        return out

    def total_violation(
        self,
        latency_ms: Mapping[str, np.ndarray | float],
        macs: np.ndarray | float | None = None,
        params: np.ndarray | float | None = None,
    ) -> np.ndarray:
        """Sum of relative violations: 0 where feasible."""
        parts = list(self.violations(latency_ms, macs, params).values())
        if not parts:
            ref = next(iter(latency_ms.values()), 0.0)
            return np.zeros_like(np.asarray(ref, dtype=np.float64))
        return np.sum(parts, axis=0)

    def describe(self) -> str:
        parts = [f"latency on {dev} <= {b:g} ms" for dev, b in self.latency_ms.items()]
        if self.max_macs is not None:
            parts.append(f"MACs <= {self.max_macs:g}")
        if self.max_params is not None:
            parts.append(f"params <= {self.max_params:g}")
        return ", ".join(parts) or "no constraints"


def confidence_z(confidence: float) -> float:
    """One-sided normal quantile for a feasibility confidence.

    An architecture whose latency is predicted as ``mean ± std`` (normal) runs
    within a budget ``B`` with probability at least ``confidence`` exactly when
    ``mean + z * std <= B``, ``z = Φ⁻¹(confidence)``. Confidence below 0.5 is
    refused: it would call an architecture feasible although its *expected*
    latency is over the budget.
    """
    if not (isinstance(confidence, int | float) and 0.5 <= confidence < 1.0):
        raise ValueError(f"feasibility_confidence must be in [0.5, 1), got {confidence!r}")
    return NormalDist().inv_cdf(float(confidence))


def exploring_z(confidence: float, name: str = "verified_feasibility_confidence") -> float:
    """:func:`confidence_z` for steering a search whose answer measured
    latencies verify: any confidence in (0, 1). Below 0.5 the bound is
    optimistic (``z < 0``): the search may evaluate, and measure, architectures
    predicted somewhat over the budget, which a biased few-shot model would
    otherwise put out of reach; the measurement, not the bound, decides whether
    one is the answer."""
    if not (isinstance(confidence, int | float) and 0.0 < confidence < 1.0):
        raise ValueError(f"{name} must be in (0, 1), got {confidence!r}")
    return NormalDist().inv_cdf(float(confidence))
