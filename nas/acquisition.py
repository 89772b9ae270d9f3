"""Choosing the next batch of real evaluations from a predicted pool.

Budget mode (maximise accuracy subject to constraints): a batch is shared
among slot kinds ("arms", :func:`select_budget`): the highest predicted *mean*
(exploitation: the predictor's best guesses), neighbours of the incumbent, the
highest optimistic score ``mean + kappa * std`` (exploration where the
ensemble disagrees) and uniformly random picks. Pareto mode: greedy expected
hypervolume gain — each pick is the candidate whose optimistic accuracy adds
the most area to the measured front (summed over devices), after which the
pick joins the front at its *mean* ("believer") so the next pick goes
elsewhere on the front.

Both keep a batch diverse: a candidate closer than ``min_distance`` changed
choices (half the L1 distance of one-hot encodings) to an already picked one
is skipped while others remain. Only predicted-feasible candidates are picked;
if there are none, :func:`select_closest` takes the least-violating ones.
Every loop here is bounded by the pool size and the batch size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from nas.inner import Pool
from nas.pareto import hypervolume_improvement

__all__ = [
    "BUDGET_ARMS",
    "select_budget",
    "select_closest",
    "select_pareto",
    "select_random",
]

#: Slot kinds of a budget-mode batch (see :func:`select_budget`).
BUDGET_ARMS = ("exploit", "local", "explore", "random")

#: How far down the ranking the diversity filter looks, in multiples of the batch size.
_SCAN_FACTOR = 50


def _diverse(
    order: np.ndarray, X: np.ndarray, k: int, min_distance: float, picked: list[int]
) -> list[int]:
    """Extend ``picked`` with up to ``k`` entries of ``order``, preferring diverse ones."""
    picked = list(picked)
    target = len(picked) + k
    scan = order[: max(_SCAN_FACTOR * k, k)]
    skipped = []
    for i in scan:
        if len(picked) >= target:
            break
        if i in picked:
            continue
        if picked and min_distance > 0:
            dist = 0.5 * np.abs(X[picked] - X[i]).sum(axis=1)
            if dist.min() < min_distance:
                skipped.append(int(i))
                continue
        picked.append(int(i))
    # Not enough diverse ones: fill with the best remaining, diversity relaxed.
    for i in list(skipped) + [int(j) for j in order if int(j) not in picked]:
        if len(picked) >= target:
            break
        if i not in picked:
            picked.append(i)
    return picked


def _kappas(kappa: float | Sequence[float]) -> list[float]:
    values = [float(kappa)] if isinstance(kappa, int | float) else [float(x) for x in kappa]
    if not values:
        raise ValueError("kappa must be a number or a non-empty sequence")
    return values


def select_budget(
    pool: Pool,
    slots: Mapping[str, int],
    *,
    kappa: float | Sequence[float],
    incumbent: np.ndarray | None = None,
    min_distance: float = 2.0,
    rng: np.random.Generator | None = None,
) -> list[tuple[int, str]]:
    """Up to ``sum(slots.values())`` predicted-feasible candidates, each with the
    arm (slot kind) that chose it: ``(pool index, arm)``.

    Arms (:data:`BUDGET_ARMS`), filled in this order:

    - ``"exploit"``: the highest predicted mean (the predictor's best guesses);
    - ``"local"``: the best-predicted neighbours (one changed choice) of
      ``incumbent``, the encoding of the best feasible architecture measured;
    - ``"explore"``: the highest optimistic score ``mean + kappa * std``.
      ``kappa`` may be a sequence: these slots then cycle through it;
    - ``"random"``: uniformly random (needs ``rng``): exploration that does not
      trust the ensemble's spread, which is small exactly where the predictor
      has never seen data.

    Slots an arm cannot fill (no neighbour left, say) go to ``"explore"``.
    """
    unknown = set(slots) - set(BUDGET_ARMS)
    if unknown:
        raise ValueError(f"unknown arm(s) {sorted(unknown)}; known: {list(BUDGET_ARMS)}")
    k = sum(max(0, n) for n in slots.values())
    feasible = np.flatnonzero(pool.candidates.feasible)
    if k <= 0 or feasible.size == 0:
        return []
    X = pool.candidates.X
    picked: list[int] = []
    arms: list[str] = []

    def take(indices: list[int], arm: str) -> None:
        picked.extend(indices)
        arms.extend([arm] * len(indices))

    by_mean = feasible[np.argsort(-pool.mean[feasible], kind="stable")]
    n_exploit = min(slots.get("exploit", 0), k)
    take(_diverse(by_mean, X, n_exploit, min_distance, picked)[len(picked) :], "exploit")
    n_local = min(slots.get("local", 0), k - len(picked))
    if n_local > 0 and incumbent is not None:
        dist = 0.5 * np.abs(X[by_mean] - incumbent).sum(axis=1)
        near = [int(i) for i in by_mean[dist <= 1.0 + 1e-9] if int(i) not in picked]
        take(near[:n_local], "local")
    n_random = min(slots.get("random", 0), k - len(picked)) if rng is not None else 0
    kappas = _kappas(kappa)
    orders = [
        feasible[np.argsort(-(pool.mean[feasible] + kap * pool.std[feasible]), kind="stable")]
        for kap in kappas
    ]
    for slot in range(k - n_random - len(picked)):
        before = len(picked)
        extended = _diverse(orders[slot % len(orders)], X, 1, min_distance, picked)
        if len(extended) == before:  # pool exhausted
            break
        take(extended[before:], "explore")
    if n_random > 0 and rng is not None:
        take(select_random(pool, n_random, picked, rng), "random")
    return list(zip(picked, arms, strict=True))


def select_pareto(
    pool: Pool,
    k: int,
    fronts: Sequence[tuple[np.ndarray, np.ndarray]],
    refs: Sequence[tuple[float, float]],
    *,
    kappa: float | Sequence[float],
    min_distance: float = 2.0,
    latency: np.ndarray | None = None,
) -> list[int]:
    """Greedy hypervolume-gain batch; ``fronts[d]`` = measured (latency, accuracy)
    of feasible evaluations on device ``d``, ``refs[d]`` its reference point.
    ``latency`` (pool size, devices) replaces the pool's latencies when the
    fronts are measured on another, monotone, scale (dominance is unchanged).
    A sequence ``kappa`` cycles over the picks as in :func:`select_budget`."""
    feasible = np.flatnonzero(pool.candidates.feasible)
    if k <= 0 or feasible.size == 0:
        return []
    X = pool.candidates.X[feasible]
    lat = (pool.candidates.latency if latency is None else latency)[feasible]
    mean = pool.mean[feasible]
    kappas = _kappas(kappa)
    std = pool.std[feasible]
    fronts = [(np.asarray(fl, np.float64), np.asarray(fa, np.float64)) for fl, fa in fronts]
    picked: list[int] = []
    for slot in range(min(k, feasible.size)):
        optimistic = mean + kappas[slot % len(kappas)] * std
        gain = np.zeros(feasible.size)
        for d, ((f_lat, f_acc), ref) in enumerate(zip(fronts, refs, strict=True)):
            gain += hypervolume_improvement(f_lat, f_acc, lat[:, d], optimistic, ref)
        gain[picked] = -1.0
        if picked and min_distance > 0:
            near = (0.5 * np.abs(X[:, None, :] - X[picked][None, :, :]).sum(axis=2)).min(axis=1)
            gain[(near < min_distance) & (gain >= 0)] *= 1e-3  # strongly prefer diverse picks
        best = int(np.argmax(gain))
        if gain[best] <= 0.0:
            break
        picked.append(best)
        fronts = [
            (np.append(f_lat, lat[best, d]), np.append(f_acc, mean[best]))
            for d, (f_lat, f_acc) in enumerate(fronts)
        ]
    if len(picked) < k:  # no more predicted gain: fall back on the optimistic ranking
        order = np.argsort(-(mean + max(kappas) * std), kind="stable")
        picked = _diverse(order, X, k - len(picked), min_distance, picked)
    return [int(feasible[i]) for i in picked]


def select_closest(violation: np.ndarray, k: int) -> list[int]:
    """The ``k`` least-violating candidates (used when none is predicted feasible)."""
    return [int(i) for i in np.argsort(violation, kind="stable")[:k]]


def select_random(pool: Pool, k: int, picked: Sequence[int], rng: np.random.Generator) -> list[int]:
    """Up to ``k`` uniformly random predicted-feasible candidates not in ``picked``."""
    taken = set(picked)
    free = [int(i) for i in np.flatnonzero(pool.candidates.feasible) if int(i) not in taken]
    if k <= 0 or not free:
        return []
    return [free[int(j)] for j in rng.choice(len(free), size=min(k, len(free)), replace=False)]
