"""The answer when accuracy cannot be measured: the largest subnet that fits.

A supernet registered without any images (an imported OFA network whose
owner gave no dataset) can have its subnets' latency predicted but not their
accuracy measured. Within one once-for-all supernet, more multiply-accumulates
is the usual direction of more accuracy, so the stand-in answer is the subnet
with the most MACs whose predicted latency meets the budget (and the hard
MACs/params limits). It is labelled as a proxy wherever it is reported and
carries no accuracy: it must never be read as a measurement.

The rule: a space-filling random sample plus the two extreme subnets, then a
few rounds of local search (mutations of the current leaders), all scored in
batch by the latency model; the winner is the feasible candidate with the
most MACs (ties: fewer milliseconds). If nothing is feasible, the answer is
infeasible and names the fastest candidate seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nas.costs import macs_and_params
from nas.latency import BatchLatency, LatencyLike
from supernets.spaces import SearchSpace

__all__ = ["PROXY_RULE", "ProxyAnswer", "largest_macs_under_budget"]

#: How every proxy answer describes itself.
PROXY_RULE = "largest MACs whose predicted latency meets the budget (no accuracy measured)"


@dataclass(frozen=True)
class ProxyAnswer:
    """The chosen subnet (or, if none fits, the fastest one seen)."""

    arch: Any
    feasible: bool
    latency_ms: float
    macs: float
    params: float
    n_candidates: int
    rule: str = PROXY_RULE

    def to_dict(self) -> dict[str, Any]:
        return {
            "arch": self.arch.to_dict(),
            "feasible": self.feasible,
            "latency_ms": float(self.latency_ms),
            "latency_source": "predicted",
            "macs": float(self.macs),
            "params": float(self.params),
            "accuracy": None,
            "accuracy_source": "none",
            "answer": "proxy",
            "rule": self.rule,
            "n_candidates": self.n_candidates,
        }


def largest_macs_under_budget(
    space: SearchSpace[Any],
    latency: LatencyLike,
    budget_ms: float,
    *,
    device: str = "device",
    max_macs: float | None = None,
    max_params: float | None = None,
    n_samples: int = 4000,
    n_rounds: int = 10,
    n_mutants: int = 400,
    seed: int = 0,
    n_classes: int = 1000,
) -> ProxyAnswer:
    """See the module docstring. ``latency``: anything :class:`BatchLatency` takes."""
    if budget_ms <= 0:
        raise ValueError(f"budget_ms must be positive, got {budget_ms}")
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    rng = np.random.default_rng(seed)
    model = BatchLatency(latency, space, device)
    seen: dict[str, int] = {}
    archs: list[Any] = []
    lat: list[float] = []
    macs: list[float] = []
    params: list[float] = []

    def score(batch: Sequence[Any]) -> None:
        new: list[Any] = []
        for arch in batch:
            key = space.arch_hash(arch)
            if key not in seen:
                seen[key] = len(archs) + len(new)
                new.append(arch)
        if not new:
            return
        costs = macs_and_params(space, new, n_classes=n_classes)
        archs.extend(new)
        lat.extend(float(v) for v in model.predict_archs(new))
        macs.extend(float(v) for v in costs.macs)
        params.extend(float(v) for v in costs.params)

    def feasible_mask() -> np.ndarray:
        ok = np.asarray(lat) <= budget_ms
        if max_macs is not None:
            ok &= np.asarray(macs) <= max_macs
        if max_params is not None:
            ok &= np.asarray(params) <= max_params
        return ok

    extremes = [getattr(space, "min_arch", None), getattr(space, "max_arch", None)]
    score([f() for f in extremes if f is not None] + [space.sample(rng) for _ in range(n_samples)])
    for _ in range(n_rounds):
        ok = np.flatnonzero(feasible_mask())
        if ok.size == 0:
            break
        leaders = ok[np.argsort(-np.asarray(macs)[ok], kind="stable")[:20]]
        parents = [archs[int(i)] for i in leaders]
        score([space.mutate(parents[j % len(parents)], rng, prob=0.1) for j in range(n_mutants)])
    ok = feasible_mask()
    lat_arr, macs_arr = np.asarray(lat), np.asarray(macs)
    if ok.any():
        idx = np.flatnonzero(ok)
        # Most MACs; among equals, the faster one.
        best = int(idx[np.lexsort((lat_arr[idx], -macs_arr[idx]))[0]])
    else:
        best = int(np.argmin(lat_arr))
    return ProxyAnswer(
        arch=archs[best],
        feasible=bool(ok[best]),
        latency_ms=float(lat_arr[best]),
        macs=float(macs_arr[best]),
        params=float(params[best]),
        n_candidates=len(archs),
    )
