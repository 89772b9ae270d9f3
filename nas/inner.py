"""The inner search: cheap exploration over the predictors, no real evaluation.

Each round of the loop asks an inner search for a *pool* of candidates with
predicted accuracy (mean, std); the acquisition step then picks the batch to
evaluate for real. Two strategies:

* :class:`ExhaustiveInner` — the space is small enough to enumerate
  (NAS-Bench-201: 15,625 cells): predict every architecture, vectorised. This
  is exact and, at ~0.3 s per round, the cheapest option there.
* :class:`OptunaInner` — any space: an Optuna sampler (NSGA-II by default)
  driven through ask/tell in whole generations, so that one vectorised
  predictor call scores a generation. Objectives are the optimistic predicted
  accuracy (``mean + kappa * std``) and, in Pareto mode, latency per device;
  constraint violations go through ``trial.set_constraint``. Every distinct
  architecture visited joins the pool, and the best measured architectures
  seed the first generation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.study import StudyDirection

from nas.candidates import CandidateSet, Featurizer
from supernets.spaces import SearchSpace

__all__ = ["ExhaustiveInner", "InnerSearch", "OptunaInner", "Pool", "space_size"]

PredictFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Pool:
    """Candidates with predicted accuracy (mean, std); never measured ones."""

    candidates: CandidateSet
    mean: np.ndarray
    std: np.ndarray

    def __len__(self) -> int:
        return len(self.candidates)


class InnerSearch(Protocol):
    def propose(
        self,
        predict: PredictFn,
        exclude: Collection[str],
        seeds: Sequence[Any],
        rng: np.random.Generator,
    ) -> Pool: ...

    def sample(self, rng: np.random.Generator, n: int) -> CandidateSet:
        """Up to ``n`` random distinct architectures (the initial design)."""
        ...


def space_size(space: SearchSpace[Any]) -> float:
    """Number of flat-parameter combinations (an upper bound on distinct networks)."""
    return float(math.prod(len(v) for v in space.choices().values()))


def _pool(cands: CandidateSet, predict: PredictFn, exclude: Collection[str]) -> Pool:
    """Unmeasured candidates with predictions. Only the predicted-feasible ones
    are kept when there are any (nothing else can be picked, and prediction is
    the cost here); otherwise all, so that the closest can be reported."""
    fresh = np.array([h not in exclude for h in cands.hashes], dtype=bool)
    feasible = fresh & cands.feasible
    cands = cands.take(np.flatnonzero(feasible if feasible.any() else fresh))
    if len(cands) == 0:
        return Pool(cands, np.zeros(0), np.zeros(0))
    mean, std = predict(cands.X)
    return Pool(cands, np.asarray(mean, np.float64), np.asarray(std, np.float64))


class ExhaustiveInner:
    """Score every architecture of an enumerable space (features computed once)."""

    def __init__(self, featurizer: Featurizer) -> None:
        space = featurizer.space
        all_archs = getattr(space, "all_archs", None)
        if all_archs is None:
            raise ValueError(f"space {space.name!r} cannot enumerate its architectures")
        self.featurizer = featurizer
        self.all = featurizer.featurize(all_archs())

    def propose(
        self,
        predict: PredictFn,
        exclude: Collection[str],
        seeds: Sequence[Any],
        rng: np.random.Generator,
    ) -> Pool:
        return _pool(self.all, predict, exclude)

    def sample(self, rng: np.random.Generator, n: int) -> CandidateSet:
        """``n`` distinct architectures drawn uniformly (for the initial design)."""
        idx = rng.choice(len(self.all), size=min(n, len(self.all)), replace=False)
        return self.all.take(idx)


class OptunaInner:
    """Optuna sampler (NSGA-II by default) over the predictors, in whole generations."""

    def __init__(
        self,
        featurizer: Featurizer,
        *,
        population: int = 100,
        generations: int = 20,
        kappa: float = 1.0,
        pareto: bool = False,
        sampler_factory: Callable[[int, int], optuna.samplers.BaseSampler] | None = None,
    ) -> None:
        if population < 2 or generations < 1:
            raise ValueError("inner search needs population >= 2 and generations >= 1")
        self.featurizer = featurizer
        self.population = population
        self.generations = generations
        self.kappa = kappa
        self.pareto = pareto
        self.sampler_factory = sampler_factory or (
            lambda seed, pop: optuna.samplers.NSGAIISampler(population_size=pop, seed=seed)
        )
        self.distributions: dict[str, BaseDistribution] = {
            name: CategoricalDistribution(values)
            for name, values in featurizer.space.choices().items()
        }

    def propose(
        self,
        predict: PredictFn,
        exclude: Collection[str],
        seeds: Sequence[Any],
        rng: np.random.Generator,
    ) -> Pool:
        space = self.featurizer.space
        n_dev = len(self.featurizer.devices)
        directions = [StudyDirection.MAXIMIZE] + (
            [StudyDirection.MINIMIZE] * n_dev if self.pareto else []
        )
        study = optuna.create_study(
            directions=directions,
            sampler=self.sampler_factory(int(rng.integers(2**31 - 1)), self.population),
        )
        for arch in list(seeds)[: self.population]:
            study.enqueue_trial(space.to_params(arch), skip_if_exists=True)
        visited: dict[str, Any] = {}
        for _ in range(self.generations):
            trials = [study.ask(self.distributions) for _ in range(self.population)]
            archs = [space.from_params(t.params) for t in trials]
            hashes = [self.featurizer.hash(a) for a in archs]
            cands = self.featurizer.featurize(archs, hashes)
            mean, std = predict(cands.X)
            row = {h: i for i, h in enumerate(cands.hashes)}
            score = mean + self.kappa * std
            for j, (trial, h) in enumerate(zip(trials, hashes, strict=True)):
                i = row[h]
                visited.setdefault(h, archs[j])
                trial.set_constraint("violation", float(cands.violation[i]))
                values = [float(score[i])]
                if self.pareto:
                    values += [float(v) for v in cands.latency[i]]
                study.tell(trial, values)
        cands = self.featurizer.featurize(list(visited.values()), list(visited))
        return _pool(cands, predict, exclude)

    def sample(self, rng: np.random.Generator, n: int) -> CandidateSet:
        space = self.featurizer.space
        return self.featurizer.featurize([space.sample(rng) for _ in range(n)])
