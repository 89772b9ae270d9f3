"""Evaluation records: what one real evaluation produced, and how it was obtained.

A *real evaluation* is an architecture's accuracy measured on holdout data
(or read from a benchmark table). Its latency may be measured on the device
or predicted by a latency model: ``latency_measured`` says which, per device.
The predictor's estimate at proposal time is kept in ``predicted_accuracy`` —
a field named as a prediction, never mixed up with ``accuracy``.

Records are plain frozen dataclasses with a JSON-able :meth:`Evaluation.to_dict`:
the service stores them as rows of its trial table (``on_evaluation`` hook).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from supernets.spaces import Arch

__all__ = ["Evaluation", "Proposal"]


@dataclass(frozen=True)
class Evaluation:
    """One real evaluation (one Optuna trial)."""

    arch: Arch
    arch_hash: str
    accuracy: float
    latency_ms: Mapping[str, float]
    latency_measured: Mapping[str, bool] = field(default_factory=dict)
    macs: float | None = None
    params: float | None = None
    #: Relative constraint violations (``nas.constraints``): all zero when feasible.
    violations: Mapping[str, float] = field(default_factory=dict)
    trial_number: int | None = None
    study_name: str | None = None
    #: Why it was evaluated: "initial" (random design); in a predictor round the
    #: batch slot that chose it, "exploit", "local", "explore" or "random" (see
    #: :func:`nas.acquisition.select_budget`) or "front" (Pareto mode's
    #: hypervolume gain); "closest" (nothing feasible was predicted), or
    #: "external" (a trial this search did not propose).
    source: str = "external"
    #: The round of the loop (counted from 0 in the run that proposed it) whose
    #: batch this was; None for an external trial.
    round_no: int | None = None
    predicted_accuracy: float | None = None
    predicted_std: float | None = None
    duration_s: float | None = None
    #: Std (ms) of a *predicted* latency, per device, where the latency model
    #: gives one (:class:`nas.latency.UncertainLatencyModel`); feasibility then
    #: uses the one-sided bound (:func:`nas.pareto.effective_latency`).
    latency_std_ms: Mapping[str, float] = field(default_factory=dict)
    #: A failed on-device latency measurement of this architecture (the search's
    #: ``measure_latency`` raised): ``{device: "Error: message"}``.
    latency_errors: Mapping[str, str] = field(default_factory=dict)

    @property
    def feasible(self) -> bool:
        return all(v <= 0.0 for v in self.violations.values())

    @property
    def violation(self) -> float:
        return float(sum(self.violations.values()))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able view (``arch`` as its config dict, plus ``arch_str``)."""
        return {
            "arch": self.arch.to_dict(),
            "arch_str": str(self.arch),
            "arch_hash": self.arch_hash,
            "accuracy": self.accuracy,
            "latency_ms": dict(self.latency_ms),
            "latency_measured": dict(self.latency_measured),
            "macs": self.macs,
            "params": self.params,
            "violations": dict(self.violations),
            "feasible": self.feasible,
            "trial_number": self.trial_number,
            "study_name": self.study_name,
            "source": self.source,
            "round_no": self.round_no,
            "predicted_accuracy": self.predicted_accuracy,
            "predicted_std": self.predicted_std,
            "duration_s": self.duration_s,
            "latency_std_ms": dict(self.latency_std_ms),
            "latency_errors": dict(self.latency_errors),
        }


@dataclass(frozen=True)
class Proposal:
    """A candidate the predictors liked but that was *not* really evaluated.

    Every number here is a prediction (accuracy from the accuracy predictor;
    latency from the latency model unless it is a measurement source).
    """

    arch: Arch
    arch_hash: str
    predicted_accuracy: float
    predicted_std: float
    latency_ms: Mapping[str, float]
    violations: Mapping[str, float] = field(default_factory=dict)
    latency_std_ms: Mapping[str, float] = field(default_factory=dict)

    @property
    def feasible(self) -> bool:
        return all(v <= 0.0 for v in self.violations.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "arch": self.arch.to_dict(),
            "arch_str": str(self.arch),
            "arch_hash": self.arch_hash,
            "predicted_accuracy": self.predicted_accuracy,
            "predicted_std": self.predicted_std,
            "latency_ms": dict(self.latency_ms),
            "violations": dict(self.violations),
            "latency_std_ms": dict(self.latency_std_ms),
            "feasible": self.feasible,
            "predicted": True,
        }
