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

from nas.constraints import DEFAULT_FEASIBILITY_CONFIDENCE, Constraints, confidence_z
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
    #: (n,) total relative violation, 0 = feasible; on each latency's one-sided
    #: upper bound ``latency + z * latency_std`` (:func:`nas.constraints.confidence_z`).
    violation: np.ndarray
    #: (n, n_devices) std (ms) of the predicted latencies; zeros where the model
    #: gives none or the latency is a measurement.
    latency_std: np.ndarray | None = None

    @property
    def std(self) -> np.ndarray:
        return np.zeros_like(self.latency) if self.latency_std is None else self.latency_std

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
            latency_std=None if self.latency_std is None else self.latency_std[idx],
        )


class Featurizer:
    """Computes and caches everything cheap about an architecture."""

    def __init__(
        self,
        space: SearchSpace[Any],
        latency: Mapping[str, BatchLatency],
        constraints: Constraints,
        *,
        feasibility_confidence: float = DEFAULT_FEASIBILITY_CONFIDENCE,
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
        self.z = confidence_z(feasibility_confidence)
        # hash -> (arch, encoding, latency row, latency std row, macs, params); the
        # latency as the model gives it, before :attr:`scale`.
        self._cache: dict[str, tuple[Any, np.ndarray, np.ndarray, np.ndarray, float, float]] = {}
        #: Per-device factor applied to the model's latency and std (the online
        #: correction from measured latencies, :mod:`nas.verify`); 1 by default.
        self.scale = np.ones(len(self.devices))
        #: Bumped whenever :attr:`scale` changes: featurized sets kept elsewhere are stale.
        self.version = 0

    def raw_latency(self, arch_hash: str) -> np.ndarray | None:
        """The model's latency row of a featurized architecture, before :attr:`scale`."""
        row = self._cache.get(arch_hash)
        return None if row is None else row[2]

    def set_scale(self, scale: Mapping[str, float]) -> None:
        """Rescale the devices' predicted latencies (and their std) from now on."""
        new = np.array([float(scale.get(d, 1.0)) for d in self.devices])
        if not (np.isfinite(new).all() and (new > 0).all()):
            raise ValueError(f"latency scale factors must be positive and finite, got {scale}")
        if not np.array_equal(new, self.scale):
            self.scale = new
            self.version += 1

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
        d, n_dev = self.space.feature_dim, len(self.devices)
        X = np.stack([r[1] for r in rows]) if rows else np.zeros((0, d), np.float32)
        lat = np.stack([r[2] for r in rows]) if rows else np.zeros((0, n_dev))
        std = np.stack([r[3] for r in rows]) if rows else np.zeros((0, n_dev))
        lat, std = lat * self.scale, std * self.scale
        macs = np.array([r[4] for r in rows]) if self.with_costs else None
        params = np.array([r[5] for r in rows]) if self.with_costs else None
        violation = self.constraints.total_violation(
            {dev: lat[:, j] + self.z * std[:, j] for j, dev in enumerate(self.devices)},
            macs,
            params,
        )
        uncertain = any(m.uncertain for m in self.latency.values())
        return CandidateSet(
            [r[0] for r in rows],
            keys,
            X,
            lat,
            macs,
            params,
            violation,
            latency_std=std if uncertain else None,
        )

    def _compute(self, archs: list[Any], hashes: list[str]) -> None:
        X = self.space.encode_many(archs)
        pairs = [self.latency[d].predict_archs_with_std(archs) for d in self.devices]
        lat = np.stack([p[0] for p in pairs], axis=1)
        std = np.stack([p[1] for p in pairs], axis=1)
        if self.with_costs:
            costs = macs_and_params(self.space, archs, encoded=X)
            macs, params = costs.macs, costs.params
        else:
            macs = params = np.full(len(archs), np.nan)
        for i, h in enumerate(hashes):
            self._cache[h] = (archs[i], X[i], lat[i], std[i], float(macs[i]), float(params[i]))
