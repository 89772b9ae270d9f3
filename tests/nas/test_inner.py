"""Inner searches over the predictors and batch selection."""

from __future__ import annotations

import numpy as np
import pytest

from nas import BatchLatency, Constraints, Featurizer
from nas.acquisition import select_budget, select_pareto
from nas.inner import EvolutionInner, ExhaustiveInner, Pool, _non_dominated_ranks
from supernets import get_space


def test_non_dominated_ranks_with_constraints() -> None:
    obj = np.array([[1.0, 1.0], [2.0, 2.0], [0.5, 3.0], [3.0, 0.5], [0.0, 0.0]])
    viol = np.array([0.0, 0.0, 0.0, 0.0, 1.0])  # the best point is infeasible
    assert _non_dominated_ranks(obj, viol).tolist() == [0, 1, 0, 0, 2]
    assert _non_dominated_ranks(obj, np.zeros(5)).tolist() == [1, 2, 1, 1, 0]
    # Among infeasible rows, the smaller violation wins.
    assert _non_dominated_ranks(obj[:2], np.array([2.0, 1.0])).tolist() == [1, 0]


def ofa_featurizer(budget: float) -> Featurizer:
    space = get_space("ofa-mbv3-tiny")

    class Lat:  # linear in the encoding, like an adapted latency predictor
        def predict(self, X: np.ndarray) -> np.ndarray:
            return 1.0 + X.sum(axis=1) / 10

    return Featurizer(
        space, {"cpu": BatchLatency(Lat(), space, "cpu")}, Constraints({"cpu": budget})
    )


def fake_predict(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = np.sin(np.arange(X.shape[1]))  # a fixed, arbitrary "accuracy" landscape
    return X @ w, np.zeros(X.shape[0])


def test_evolution_beats_random_sampling_under_the_constraint() -> None:
    featurizer = ofa_featurizer(budget=4.0)
    inner = EvolutionInner(featurizer, population=40, generations=15)
    pool = inner.propose(fake_predict, set(), [], np.random.default_rng(0))
    assert len(pool) > 200 and pool.candidates.feasible.all()
    random = inner.sample(np.random.default_rng(1), len(pool))
    best_random = fake_predict(random.X[random.feasible])[0].max()
    assert pool.mean.max() > best_random
    # Excluded (already measured) architectures never come back.
    again = inner.propose(fake_predict, set(pool.candidates.hashes), [], np.random.default_rng(0))
    assert not set(again.candidates.hashes) & set(pool.candidates.hashes)


def test_pool_keeps_everything_when_nothing_is_feasible() -> None:
    featurizer = ofa_featurizer(budget=0.5)  # below any latency
    inner = EvolutionInner(featurizer, population=10, generations=2)
    pool = inner.propose(fake_predict, set(), [], np.random.default_rng(0))
    assert len(pool) > 0 and not pool.candidates.feasible.any()
    assert select_budget(pool, {"exploit": 5}, kappa=1.0) == []


def nb201_pool() -> tuple[Pool, Featurizer]:
    space = get_space("nb201")
    lat = BatchLatency(lambda a: 1.0 + sum(op.startswith("nor_conv") for op in a.ops), space, "d")
    featurizer = Featurizer(space, {"d": lat}, Constraints({"d": 4.0}))
    inner = ExhaustiveInner(featurizer)
    X = inner.all.X
    pool = inner.propose(lambda Z: fake_predict(Z), set(), [], np.random.default_rng(0))
    assert len(pool) < len(X)  # only the feasible ones are scored
    return pool, featurizer


def indices(picks: list[tuple[int, str]]) -> list[int]:
    return [i for i, _ in picks]


def test_budget_selection_is_feasible_diverse_and_exploits_first() -> None:
    pool, _ = nb201_pool()
    picks = select_budget(pool, {"exploit": 8}, kappa=1.0, min_distance=2.0)
    picked = indices(picks)
    assert len(picked) == 8 and len(set(picked)) == 8
    assert {arm for _, arm in picks} == {"exploit"}
    by_mean = np.argsort(-pool.mean, kind="stable")
    assert picked[0] == int(by_mean[0])
    X = pool.candidates.X[picked]
    dist = 0.5 * np.abs(X[:, None] - X[None]).sum(axis=2)
    assert dist[np.triu_indices(8, 1)].min() >= 2.0
    # Without the diversity rule the batch is simply the top of the mean ranking.
    plain = indices(select_budget(pool, {"exploit": 8}, kappa=1.0, min_distance=0.0))
    assert plain == by_mean[:8].tolist()


def test_budget_selection_labels_every_arm() -> None:
    pool, _ = nb201_pool()
    incumbent = pool.candidates.X[int(np.argmax(pool.mean))]
    slots = {"exploit": 1, "local": 2, "explore": 2, "random": 3}
    picks = select_budget(pool, slots, kappa=1.0, incumbent=incumbent, rng=np.random.default_rng(0))
    arms = [arm for _, arm in picks]
    assert arms == ["exploit", "local", "local", "explore", "explore", "random", "random", "random"]
    picked = indices(picks)
    assert len(set(picked)) == 8 and pool.candidates.feasible[picked].all()
    near = 0.5 * np.abs(pool.candidates.X[picked[1:3]] - incumbent).sum(axis=1)
    assert near.tolist() == [1.0, 1.0]
    optimistic = pool.mean + pool.std
    assert optimistic[picked[3]] >= np.sort(optimistic)[-50]  # near the top of its ranking
    # Slots an arm cannot fill (no incumbent, no rng) go to the optimistic ranking.
    fallback = select_budget(pool, {"local": 2, "random": 1}, kappa=1.0)
    assert [arm for _, arm in fallback] == ["explore"] * 3
    with pytest.raises(ValueError, match="unknown arm"):
        select_budget(pool, {"greedy": 1}, kappa=1.0)


def test_pareto_selection_spreads_over_latency() -> None:
    pool, _ = nb201_pool()
    lat = pool.candidates.latency[:, 0]
    fronts = [(np.array([4.0]), np.array([pool.mean.min()]))]
    picked = select_pareto(pool, 6, fronts, [(4.5, pool.mean.min() - 1)], kappa=0.0)
    assert len(set(picked)) == 6
    assert len(set(lat[picked].tolist())) >= 3  # several latency levels, not one corner


@pytest.mark.parametrize("k", [0, 1])
def test_selection_edge_cases(k: int) -> None:
    pool, _ = nb201_pool()
    assert len(select_budget(pool, {"exploit": k}, kappa=0.0)) == k


def test_random_slots_are_feasible_and_new() -> None:
    from nas.acquisition import select_random

    pool, _ = nb201_pool()
    picked = indices(select_budget(pool, {"exploit": 3}, kappa=0.0))
    extra = select_random(pool, 4, picked, np.random.default_rng(0))
    assert len(extra) == 4 and not set(extra) & set(picked)
    assert pool.candidates.feasible[extra].all()
    assert select_random(pool, 0, picked, np.random.default_rng(0)) == []
