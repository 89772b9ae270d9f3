"""Candidate batches: architectures with their encodings, latencies, costs and
constraint violations, computed once per architecture and cached.

Everything here is cheap (no accuracy evaluation): it is what the inner
search calls thousands of times per round.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nas.constraints import DEFAULT_FEASIBILITY_CONFIDENCE, Constraints, exploring_z
from nas.correction import LatencyCorrection
from nas.costs import has_cost_model, macs_and_params
from nas.latency import BatchLatency
from supernets.spaces import Arch, SearchSpace

__all__ = ["CandidateSet", "FeatureCache", "Featurizer"]

#: What is cached per architecture: (arch, encoding, latency row, latency std
#: row, macs, params); the latency as the model gives it, before any scale.
_Row = tuple[Arch, np.ndarray, np.ndarray, np.ndarray, float, float]


@dataclass(frozen=True)
class CandidateSet:
    """Aligned arrays over ``n`` distinct architectures."""

    archs: list[Arch]
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


class _Same:
    """Keys a latency source by identity (the same loaded model object); holds
    it, so that its id cannot be reused by another object while keyed."""

    __slots__ = ("obj",)

    def __init__(self, obj: object) -> None:
        self.obj = obj

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.obj is self.obj

    def __hash__(self) -> int:
        return id(self.obj)


def _space_key(space: SearchSpace[Any]) -> Hashable:
    """What makes two space objects featurise alike: kind, name, configuration
    and the choices it allows (a restricted view enumerates fewer)."""
    return (
        type(space).__name__,
        space.name,
        json.dumps(space.config(), sort_keys=True, default=str),
        json.dumps(space.choices(), sort_keys=True, default=str),
    )


class FeatureCache:
    """Featurised architectures kept across searches, for a process that runs
    one search after another (a job-queue worker): per (space, latency models)
    combination, each architecture's :data:`_Row`; per enumerable space, its
    architectures with their hashes. The latency models are told apart by
    identity, so the caller reuses its loaded model objects to get hits.

    Bounded: at most ``max_entries`` combinations and spaces each (the least
    recently used dropped), each combination at most ``max_rows`` architectures
    (one that outgrew it during a search starts afresh when next taken). One
    search at a time uses it (not thread-safe).
    """

    def __init__(self, max_entries: int = 4, max_rows: int = 100_000) -> None:
        if max_entries < 1 or max_rows < 1:
            raise ValueError(
                f"max_entries and max_rows must be >= 1, got {max_entries}, {max_rows}"
            )
        self.max_entries = max_entries
        self.max_rows = max_rows
        self._rows: OrderedDict[Hashable, dict[str, _Row]] = OrderedDict()
        self._enumerations: OrderedDict[Hashable, tuple[list[Arch], list[str]]] = OrderedDict()

    def rows(self, space: SearchSpace[Any], latency: Mapping[str, BatchLatency]) -> dict[str, _Row]:
        """The shared per-architecture rows of this space and these models (the
        caller adds to it)."""
        key = (_space_key(space), tuple((d, _Same(m.source)) for d, m in latency.items()))
        rows = self._rows.get(key)
        if rows is None or len(rows) > self.max_rows:
            rows = {}
        self._put(self._rows, key, rows)
        return rows

    def enumeration(self, space: SearchSpace[Any]) -> tuple[list[Arch], list[str]]:
        """Every architecture of an enumerable space, and their hashes."""
        key = _space_key(space)
        found = self._enumerations.get(key)
        if found is None:
            archs = list(space.all_archs())  # type: ignore[attr-defined]
            found = (archs, [space.arch_hash(a) for a in archs])
        self._put(self._enumerations, key, found)
        return found

    def _put(self, store: OrderedDict[Hashable, Any], key: Hashable, value: Any) -> None:
        store[key] = value
        store.move_to_end(key)
        while len(store) > self.max_entries:
            store.popitem(last=False)

    def __len__(self) -> int:
        """Architectures held, over every combination."""
        return sum(len(rows) for rows in self._rows.values())


class Featurizer:
    """Computes and caches everything cheap about an architecture (for one
    search; across searches given a :class:`FeatureCache`)."""

    def __init__(
        self,
        space: SearchSpace[Any],
        latency: Mapping[str, BatchLatency],
        constraints: Constraints,
        *,
        feasibility_confidence: float = DEFAULT_FEASIBILITY_CONFIDENCE,
        cache: FeatureCache | None = None,
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
        # Any confidence in (0, 1): below 0.5 only for a search whose answer is
        # verified by measurement (SearchSettings validates what users give).
        self.z = exploring_z(feasibility_confidence, name="feasibility_confidence")
        self._shared = cache
        # hash -> row (:data:`_Row`); the latency before :attr:`corrections`.
        self._cache: dict[str, _Row] = {} if cache is None else cache.rows(space, self.latency)
        #: Per device, the online correction of the model's latency and std from
        #: measured latencies (:mod:`nas.correction`, fitted by :mod:`nas.verify`).
        self.corrections: dict[str, LatencyCorrection] = {}
        #: Bumped whenever :attr:`corrections` change: featurized sets kept elsewhere are stale.
        self.version = 0

    def raw(self, arch_hash: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``(encoding, latency, std)`` of a featurized architecture as the
        models give them (one column per device), before any correction."""
        row = self._cache.get(arch_hash)
        return None if row is None else (row[1], row[2], row[3])

    def set_corrections(self, corrections: Mapping[str, LatencyCorrection]) -> None:
        """Correct the devices' predicted latencies (and their std) from now on."""
        unknown = set(corrections) - set(self.devices)
        if unknown:
            raise ValueError(f"latency corrections for unknown device(s) {sorted(unknown)}")
        self.corrections = dict(corrections)
        self.version += 1

    def hash(self, arch: Arch) -> str:
        return self.space.arch_hash(arch)

    def enumerate(self) -> tuple[list[Arch], list[str]]:
        """Every architecture of an enumerable space and their hashes (kept
        across searches with a :class:`FeatureCache`)."""
        if self._shared is not None:
            return self._shared.enumeration(self.space)
        archs = list(self.space.all_archs())  # type: ignore[attr-defined]
        return archs, [self.hash(a) for a in archs]

    def featurize(self, archs: Sequence[Arch], hashes: Sequence[str] | None = None) -> CandidateSet:
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
        lat, std = self._corrected(X, lat, std)
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

    def _corrected(
        self, X: np.ndarray, lat: np.ndarray, std: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        if not self.corrections or len(X) == 0:
            return lat, std
        lat, std = lat.copy(), std.copy()
        for j, dev in enumerate(self.devices):
            fix = self.corrections.get(dev)
            if fix is not None and fix.fitted:
                uncertain = self.latency[dev].uncertain
                lat[:, j], std[:, j] = fix.apply(X, lat[:, j], std[:, j], uncertain=uncertain)
        return lat, std

    def _compute(self, archs: list[Arch], hashes: list[str]) -> None:
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
