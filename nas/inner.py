"""The inner search: cheap exploration over the predictors, no real evaluation.

Each round of the loop asks an inner search for a *pool* of candidates with
predicted accuracy (mean, std); the acquisition step then picks the batch to
evaluate for real. Three strategies:

* :class:`ExhaustiveInner` — the space is small enough to enumerate
  (NAS-Bench-201: 15,625 cells): predict every architecture, vectorised. This
  is exact and, at ~0.3 s per round, the cheapest option there.
* :class:`EvolutionInner` — any space (the default for large ones): NSGA-II
  on the flat choice view, vectorised; thousands of candidates per second.
* :class:`OptunaInner` — any space: an Optuna sampler (NSGA-II by default)
  driven through ask/tell in whole generations, so that one vectorised
  predictor call scores a generation. Objectives are the optimistic predicted
  accuracy (``mean + kappa * std``) and, in Pareto mode, latency per device;
  constraint violations go through ``trial.set_constraint``. Every distinct
  architecture visited joins the pool, and the best measured architectures
  seed the first generation. Any Optuna sampler plugs in (``sampler_factory``),
  but Optuna's per-parameter trial bookkeeping costs ~2-5 ms per candidate on
  OFA's 46 parameters: a few hundred candidates per second, hence not the default.
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

__all__ = [
    "EvolutionInner",
    "ExhaustiveInner",
    "InnerSearch",
    "OptunaInner",
    "Pool",
    "space_size",
]

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


def _uniform_sample(featurizer: Featurizer, rng: np.random.Generator, n: int) -> CandidateSet:
    """Up to ``n`` distinct architectures from the space's own uniform sampler."""
    return featurizer.featurize([featurizer.space.sample(rng) for _ in range(n)])


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
        if not hasattr(space, "all_archs"):
            raise ValueError(f"space {space.name!r} cannot enumerate its architectures")
        self.featurizer = featurizer
        self._all: tuple[int, CandidateSet] | None = None

    @property
    def all(self) -> CandidateSet:
        """Every architecture, featurized once (on the first predictor round), and
        again after the latency correction changed (``featurizer.version``)."""
        version = self.featurizer.version
        if self._all is None or self._all[0] != version:
            archs, hashes = self.featurizer.enumerate()
            self._all = (version, self.featurizer.featurize(archs, hashes))
        return self._all[1]

    def propose(
        self,
        predict: PredictFn,
        exclude: Collection[str],
        seeds: Sequence[Any],
        rng: np.random.Generator,
    ) -> Pool:
        return _pool(self.all, predict, exclude)

    def sample(self, rng: np.random.Generator, n: int) -> CandidateSet:
        """Up to ``n`` distinct architectures drawn uniformly (for the initial design)."""
        return _uniform_sample(self.featurizer, rng, n)


class _PopulationInner:
    """What the two population searches share: their size, optimism and mode."""

    def __init__(
        self,
        featurizer: Featurizer,
        *,
        population: int,
        generations: int,
        kappa: float,
        pareto: bool,
        min_population: int,
    ) -> None:
        if population < min_population or generations < 1:
            raise ValueError(
                f"inner search needs population >= {min_population} and generations >= 1, "
                f"got {population} and {generations}"
            )
        self.featurizer = featurizer
        self.population = population
        self.generations = generations
        self.kappa = kappa
        self.pareto = pareto

    def sample(self, rng: np.random.Generator, n: int) -> CandidateSet:
        """Up to ``n`` distinct architectures drawn uniformly (for the initial design)."""
        return _uniform_sample(self.featurizer, rng, n)


class OptunaInner(_PopulationInner):
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
        super().__init__(
            featurizer,
            population=population,
            generations=generations,
            kappa=kappa,
            pareto=pareto,
            min_population=2,
        )
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


def _non_dominated_ranks(objectives: np.ndarray, violation: np.ndarray) -> np.ndarray:
    """NSGA-II front index of each row (0 = best) under constraint domination.

    ``objectives`` (n, m) are all to be *minimised*. A feasible row dominates
    every infeasible one; between infeasible rows the smaller violation wins.
    """
    n = objectives.shape[0]
    feasible = violation <= 0
    le = (objectives[:, None, :] <= objectives[None, :, :]).all(axis=2)
    lt = (objectives[:, None, :] < objectives[None, :, :]).any(axis=2)
    dominates = le & lt & feasible[:, None] & feasible[None, :]
    dominates |= feasible[:, None] & ~feasible[None, :]
    both_bad = ~feasible[:, None] & ~feasible[None, :]
    dominates |= both_bad & (violation[:, None] < violation[None, :])
    ranks = np.full(n, -1)
    n_dominators = dominates.sum(axis=0)
    for rank in range(n):  # domination is acyclic: each pass ranks >= 1 row
        front = np.flatnonzero(n_dominators == 0)
        if front.size == 0:
            break
        ranks[front] = rank
        n_dominators = n_dominators - dominates[front].sum(axis=0)
        n_dominators[ranks >= 0] = -1
    return ranks


def _crowding(objectives: np.ndarray) -> np.ndarray:
    n, m = objectives.shape
    dist = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(m):
        order = np.argsort(objectives[:, j], kind="stable")
        span = objectives[order[-1], j] - objectives[order[0], j]
        dist[order[0]] = dist[order[-1]] = np.inf
        if span > 0:
            dist[order[1:-1]] += (objectives[order[2:], j] - objectives[order[:-2], j]) / span
    return dist


class EvolutionInner(_PopulationInner):
    """NSGA-II over the flat choice view, vectorised (any space, large ones).

    The same algorithm as Optuna's ``NSGAIISampler`` — binary tournaments on
    (front, crowding), uniform crossover, per-choice mutation, elitist survival
    of parents + children under constraint domination — with a generation
    scored by one predictor call and no per-parameter bookkeeping, so it
    visits thousands of candidates per second where the Optuna ask/tell loop
    (:class:`OptunaInner`) manages a few hundred on OFA's 46 parameters.
    """

    def __init__(
        self,
        featurizer: Featurizer,
        *,
        population: int = 100,
        generations: int = 20,
        kappa: float = 1.0,
        pareto: bool = False,
        mutation_prob: float | None = None,
    ) -> None:
        super().__init__(
            featurizer,
            population=population,
            generations=generations,
            kappa=kappa,
            pareto=pareto,
            min_population=4,
        )
        choices = featurizer.space.choices()
        self.names = list(choices)
        self.values = [list(v) for v in choices.values()]
        self.sizes = np.array([len(v) for v in self.values])
        self.mutation_prob = mutation_prob or 1.0 / len(self.names)

    def _archs(self, genes: np.ndarray) -> list[Any]:
        space = self.featurizer.space
        return [
            space.from_params(
                {n: self.values[j][g] for j, (n, g) in enumerate(zip(self.names, row, strict=True))}
            )
            for row in genes
        ]

    def _genes(self, arch: Any) -> np.ndarray:
        params = self.featurizer.space.to_params(arch)
        return np.array([self.values[j].index(params[n]) for j, n in enumerate(self.names)])

    def _random(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return (rng.random((n, len(self.sizes))) * self.sizes).astype(np.int64)

    def _score(
        self, genes: np.ndarray, predict: PredictFn, visited: dict[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        archs = self._archs(genes)
        hashes = [self.featurizer.hash(a) for a in archs]
        cands = self.featurizer.featurize(archs, hashes)
        row = (
            np.array([cands.hashes.index(h) for h in hashes]) if len(cands) < len(hashes) else None
        )
        mean, std = predict(cands.X)
        if row is not None:  # duplicates inside the generation: map back
            mean, std = mean[row], std[row]
            lat, viol = cands.latency[row], cands.violation[row]
        else:
            lat, viol = cands.latency, cands.violation
        for a, h in zip(archs, hashes, strict=True):
            visited.setdefault(h, a)
        objectives = -(mean + self.kappa * std)[:, None]  # minimised
        if self.pareto:
            objectives = np.concatenate([objectives, lat], axis=1)
        return objectives, viol

    def propose(
        self,
        predict: PredictFn,
        exclude: Collection[str],
        seeds: Sequence[Any],
        rng: np.random.Generator,
    ) -> Pool:
        P = self.population
        seeded = [self._genes(a) for a in list(seeds)[: P // 2]]
        genes = self._random(rng, P)
        if seeded:
            genes[: len(seeded)] = np.stack(seeded)
        visited: dict[str, Any] = {}
        obj, viol = self._score(genes, predict, visited)
        for _ in range(self.generations):
            ranks = _non_dominated_ranks(obj, viol)
            crowd = _crowding(obj)
            # Binary tournaments: lower front wins, then larger crowding distance.
            a, b = rng.integers(P, size=(2, P))
            better = (ranks[a] < ranks[b]) | ((ranks[a] == ranks[b]) & (crowd[a] >= crowd[b]))
            parents = np.where(better, a, b)
            mates = parents[rng.permutation(P)]
            swap = rng.random(genes.shape) < 0.5
            children = np.where(swap, genes[mates], genes[parents])
            mutate = rng.random(children.shape) < self.mutation_prob
            children = np.where(mutate, self._random(rng, P), children)
            c_obj, c_viol = self._score(children, predict, visited)
            # Elitist survival over parents + children: by front, then crowding.
            all_genes = np.concatenate([genes, children])
            all_obj, all_viol = np.concatenate([obj, c_obj]), np.concatenate([viol, c_viol])
            ranks = _non_dominated_ranks(all_obj, all_viol)
            crowd = _crowding(all_obj)
            keep = np.lexsort((-crowd, ranks))[:P]
            genes, obj, viol = all_genes[keep], all_obj[keep], all_viol[keep]
        cands = self.featurizer.featurize(list(visited.values()), list(visited))
        return _pool(cands, predict, exclude)

    def sample(self, rng: np.random.Generator, n: int) -> CandidateSet:
        return self.featurizer.featurize(self._archs(self._random(rng, n)))
