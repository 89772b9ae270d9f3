"""What a search returns: every real evaluation, and the answers drawn from them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.constraints import DEFAULT_FEASIBILITY_CONFIDENCE, Constraints
from nas.pareto import pareto_front
from nas.records import Evaluation, Proposal
from nas.settings import StopReason

if TYPE_CHECKING:
    from supernets.spaces import Arch

__all__ = ["SearchResult", "evaluation_summary", "json_ready"]


def json_ready(value: Any) -> Any:
    """``value`` with numpy scalars made plain and non-finite floats made None,
    through dicts, lists and tuples (JSON has no NaN or infinity)."""
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _latency_source(e: Evaluation, device: str) -> str:
    return "measured" if e.latency_measured.get(device) else "predicted"


def evaluation_summary(e: Evaluation) -> dict[str, Any]:
    """One real evaluation as the service shows it (what each number is, said)."""
    return {
        "arch": e.arch.to_dict(),
        "arch_str": str(e.arch),
        "arch_hash": e.arch_hash,
        "trial_number": e.trial_number,
        "accuracy": e.accuracy,
        "accuracy_source": "measured",
        "latency_ms": {k: float(v) for k, v in e.latency_ms.items()},
        "latency_source": {k: _latency_source(e, k) for k in e.latency_ms},
        "latency_std_ms": dict(e.latency_std_ms),
        "latency_errors": dict(e.latency_errors),
        "macs": e.macs,
        "params": e.params,
        "feasible": e.feasible,
    }


@dataclass
class SearchResult:
    """Outcome of :func:`nas.run_search`. Every accuracy in ``evaluations`` is real.

    ``best_evaluation`` and ``closest`` are :func:`nas.pareto.best` and
    :func:`nas.pareto.closest` of ``evaluations`` (with the search's
    ``feasibility_confidence``). With ``measure_latency`` the evaluations carry
    the latencies known at the end (measured where measured, the corrected
    model's prediction elsewhere) and ``best_evaluation`` has a measured
    latency within budget.
    """

    evaluations: list[Evaluation]
    devices: list[str]
    constraints: Constraints
    best_evaluation: Evaluation | None
    #: True if some real evaluation meets every constraint.
    feasible: bool
    #: When nothing is feasible: the real evaluations nearest to feasible.
    closest: list[Evaluation]
    stop_reason: StopReason
    message: str
    n_new: int
    study_name: str
    #: Predicted-best candidates not evaluated for real (all numbers predicted).
    proposals: list[Proposal] = field(default_factory=list)
    #: Distinct architectures whose latency was measured (``measure_latency``),
    #: failed measurements included, over the whole study (a resumed or shared
    #: search counts earlier ones too).
    n_latency_measurements: int = 0
    #: True when ``best``'s latency is a measurement on every device with a
    #: budget (on every device when none has one); False when it is predicted
    #: (chosen by the chance constraint) or there is no best.
    best_latency_measured: bool = False
    feasibility_confidence: float = DEFAULT_FEASIBILITY_CONFIDENCE

    @property
    def best(self) -> Arch | None:
        """Best architecture meeting every constraint (by real accuracy), or None."""
        return None if self.best_evaluation is None else self.best_evaluation.arch

    @property
    def history(self) -> list[tuple[Arch, float, float]]:
        """``(arch, accuracy, latency_ms on the first device)`` in evaluation order."""
        dev = self.devices[0]
        return [(e.arch, e.accuracy, e.latency_ms[dev]) for e in self.evaluations]

    def pareto_front(self, device: str | None = None) -> list[Evaluation]:
        """Feasible accuracy-latency front on ``device`` (default: the first)."""
        return pareto_front(
            self.evaluations,
            device or self.devices[0],
            constraints=self.constraints,
            feasibility_confidence=self.feasibility_confidence,
        )

    def to_dict(self, device: str | None = None) -> dict[str, Any]:
        """JSON-ready summary (non-finite numbers as None), as seen from ``device``
        (default: the first): its budget and, for the best, a message quoting its
        latency there."""
        device = device or self.devices[0]
        if device not in self.devices:
            raise ValueError(f"device {device!r} is not one of this search's {self.devices}")
        message = self.message
        best = self.best_evaluation
        if best is not None and not message:
            message = (
                f"best of {len(self.evaluations)} real evaluations: accuracy "
                f"{best.accuracy:.2f} at {best.latency_ms[device]:.3f} ms "
                f"({_latency_source(best, device)}) on {device}"
            )
        return json_ready(
            {
                "feasible": self.feasible,
                "message": message,
                "stop_reason": str(self.stop_reason),
                "n_evaluations": len(self.evaluations),
                "n_new": self.n_new,
                "budget_ms": self.constraints.latency_ms.get(device),
                "device": device,
                "devices": list(self.devices),
                "constraints": self.constraints.bounds(),
                "feasibility_confidence": self.feasibility_confidence,
                "study_name": self.study_name,
                "best": None if best is None else evaluation_summary(best),
                "best_latency_measured": self.best_latency_measured,
                "n_latency_measurements": self.n_latency_measurements,
                "closest": [evaluation_summary(e) for e in self.closest],
                "proposals": [p.to_dict() for p in self.proposals],
            }
        )
