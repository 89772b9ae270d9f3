"""Candidate batches: architectures with their encodings, latencies, costs and
constraint violations, computed once per architecture and cached.

Everything here is cheap (no accuracy evaluation): it is what the inner
search calls thousands of times per round.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nas.constraints import Constraints
from nas.costs import has_cost_model, macs_and_params
from nas.latency import BatchLatency
from supernets.spaces import SearchSpace

__all__ = ["CandidateSet", "Featurizer"]


@dataclass(frozen=True)
class CandidateSet:
    """Aligned arrays over ``n`` distinct architectures."""

    archs: list[Any]
    hashes: list[str]
    X: np.ndarray  # (n, feature_dim) encodings
    latency: np.ndarray  # (n, n_devices) ms, devices in Featurizer.devices order
    macs: np.ndarray | None
    params: np.ndarray | None
    violation: np.ndarray  # (n,) total relative violation, 0 = feasible

    def __len__(self) -> int:
        return len(self.archs)

    @property
    def feasible(self) -> np.ndarray:
        return self.violation <= 0.0

    def take(self, idx: Sequence[int] | np.ndarray) -> CandidateSet:
        idx = np.asarray(idx, dtype=np.int64)
        return CandidateSet(
            archs=[self.archs[i] for i in idx],
            hashes=[self.hashes[i] for i in idx],
            X=self.X[idx],
            latency=self.latency[idx],
            macs=None if self.macs is None else self.macs[idx],
            params=None if self.params is None else self.params[idx],
            violation=self.violation[idx],
        )


class Featurizer:
    """Computes and caches everything cheap about an architecture."""

    def __init__(
        self,
        space: SearchSpace[Any],
        latency: Mapping[str, BatchLatency],
        constraints: Constraints,
    ) -> None:
        if constraints.needs_costs and not has_cost_model(space):
            raise ValueError(
                f"MACs/params constraints need a cost model; space {space.name!r} has none"
            )
        unknown = set(constraints.latency_ms) - set(latency)
        if unknown:
            raise ValueError(
                f"latency budget for device(s) {sorted(unknown)} without a latency model; "
                f"devices with a model: {sorted(latency)}"
            )
        self.space = space
        self.latency = dict(latency)
        self.devices = list(latency)
        self.constraints = constraints
        self.with_costs = has_cost_model(space)
        # hash -> (arch, encoding, latency row, macs, params)
        self._cache: dict[str, tuple[Any, np.ndarray, np.ndarray, float, float]] = {}

    def hash(self, arch: Any) -> str:
        return self.space.arch_hash(arch)

    def featurize(self, archs: Sequence[Any], hashes: Sequence[str] | None = None) -> CandidateSet:
        """Features of ``archs`` (deduplicated by network identity, first kept)."""
        hashes = [self.hash(a) for a in archs] if hashes is None else list(hashes)
        seen: dict[str, Any] = {}
        for a, h in zip(archs, hashes, strict=True):
            seen.setdefault(h, a)
        missing = [h for h in seen if h not in self._cache]
        if missing:
            self._compute([seen[h] for h in missing], missing)
        keys = list(seen)
        rows = [self._cache[h] for h in keys]
        d = self.space.feature_dim
        X = np.stack([r[1] for r in rows]) if rows else np.zeros((0, d), np.float32)
        lat = np.stack([r[2] for r in rows]) if rows else np.zeros((0, len(self.devices)))
        macs = np.array([r[3] for r in rows]) if self.with_costs else None
        params = np.array([r[4] for r in rows]) if self.with_costs else None
        violation = self.constraints.total_violation(
            {dev: lat[:, j] for j, dev in enumerate(self.devices)}, macs, params
        )
        return CandidateSet([r[0] for r in rows], keys, X, lat, macs, params, violation)

    def _compute(self, archs: list[Any], hashes: list[str]) -> None:
        X = self.space.encode_many(archs)
        lat = np.stack([self.latency[d].predict_archs(archs) for d in self.devices], axis=1)
        if self.with_costs:
            costs = macs_and_params(self.space, archs, encoded=X)
            macs, params = costs.macs, costs.params
        else:
            macs = params = np.full(len(archs), np.nan)
        for i, h in enumerate(hashes):
            self._cache[h] = (archs[i], X[i], lat[i], float(macs[i]), float(params[i]))
