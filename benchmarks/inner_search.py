"""Inner-search throughput: candidates scored per second over the predictors.

The loop's step (3) searches the predictors, never the real evaluator, so it
must be cheap next to one real evaluation. This measures one inner-search
round, as the loop runs it in its first predictor round (cold feature cache),
for each strategy of :mod:`nas.inner`:

* ``exhaustive`` — every architecture (NAS-Bench-201 only: 15,625 cells);
* ``evolution``  — the vectorised NSGA-II (the default for large spaces);
* ``optuna``     — Optuna's ``NSGAIISampler`` through ask/tell.

Both population searches use the loop's defaults (population 100, 20
generations). Problems:

* ``nb201``: latency = pixel3's measured table, budget = its median; the
  accuracy predictor (the loop's default, a 5-member GBDT ensemble) is
  fitted on 100 random cells with their real CIFAR-10 accuracy.
* ``ofa-mbv3``: latency = the shipped meta-trained predictor adapted with 10
  measurements of a meta-test GPU from the bundled table, budget = the median
  predicted latency of 1,000 random subnets; the accuracy predictor is fitted
  on 100 random subnets labelled by a synthetic score (log MACs plus noise).
  No accuracy table exists for this space, and the throughput depends on the
  number of rows predicted, not on the labels.

Reported per (space, strategy), median over ``--repeats`` rounds with
different seeds: wall seconds per round, rows predicted (every call of the
accuracy predictor counted, duplicates removed per call as the loop does) and
rows per second, and the size of the pool handed to the acquisition step
(distinct, unmeasured, predicted-feasible candidates).

Usage::

    python benchmarks/inner_search.py                 # ~2 min on 2 cores
    python benchmarks/inner_search.py --repeats 1     # smoke test

Writes ``benchmarks/results/inner_search.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
STRATEGIES = ("exhaustive", "evolution", "optuna")
N_TRAIN = 100


@dataclass
class Problem:
    """A space, its featurizer (latency + budget) and a fitted accuracy predictor."""

    name: str
    space: Any
    latency: Any  # a BatchLatency source: tabular latency or an adapted predictor
    budget_ms: float
    device: str
    model: Any
    seeds: list[Any]  # the "measured" architectures: seeds of the population searches

    def featurizer(self) -> Any:
        from nas import Constraints, Featurizer
        from nas.latency import BatchLatency

        models = {self.device: BatchLatency(self.latency, self.space, self.device)}
        return Featurizer(self.space, models, Constraints({self.device: self.budget_ms}))


def _fit(X: np.ndarray, y: np.ndarray, seed: int) -> Any:
    from nas.loop import default_predictor

    model = default_predictor(seed)
    model.fit(X, y)
    return model


def nb201_problem(seed: int) -> Problem:
    from nas import TabularEvaluator

    ev = TabularEvaluator()
    latency = ev.latency("pixel3")
    rng = np.random.default_rng(seed)
    archs = ev.space.all_archs()
    train = [archs[i] for i in rng.choice(len(archs), N_TRAIN, replace=False)]
    y = np.array([ev(a) for a in train])
    return Problem(
        "nb201",
        ev.space,
        latency,
        float(np.median(latency.values)),
        "pixel3",
        _fit(ev.space.encode_many(train), y, seed),
        train,
    )


def ofa_problem(seed: int) -> Problem:
    from nas import macs_and_params
    from predictors.latency import load_pretrained
    from predictors.latency.pretrained import meta_training_data

    space, _, _, Y_test = meta_training_data("ofa-mbv3", "test")
    device = sorted(Y_test)[0]
    meta = load_pretrained(space)
    refs = np.asarray(meta.reference_indices)
    predictor = meta.adapt(meta.reference_features, Y_test[device][refs], device=device)
    rng = np.random.default_rng(seed)
    probe = [space.sample(rng) for _ in range(1000)]
    budget = float(np.median(predictor.predict(space.encode_many(probe))))
    train = [space.sample(rng) for _ in range(N_TRAIN)]
    macs = macs_and_params(space, train).macs
    y = 60 + 4 * np.log(macs / macs.min()) + rng.normal(0, 0.5, N_TRAIN)
    return Problem(
        "ofa-mbv3", space, predictor, budget, device, _fit(space.encode_many(train), y, seed), train
    )


def inner_search(strategy: str, featurizer: Any) -> Any:
    from nas.inner import EvolutionInner, ExhaustiveInner, OptunaInner
    from nas.loop import SearchSettings

    s = SearchSettings()
    if strategy == "exhaustive":
        return ExhaustiveInner(featurizer)
    cls = EvolutionInner if strategy == "evolution" else OptunaInner
    return cls(
        featurizer,
        population=s.inner_population,
        generations=s.inner_generations,
        kappa=s.max_kappa("budget"),
    )


def measure(problem: Problem, strategy: str, seed: int) -> dict[str, Any]:
    featurizer = problem.featurizer()  # fresh: a cold feature cache, as in the first round
    inner = inner_search(strategy, featurizer)
    exclude = {featurizer.hash(a) for a in problem.seeds}
    rows = 0

    def predict(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        nonlocal rows
        rows += len(X)
        mean, std = problem.model.predict_with_uncertainty(X)
        return np.asarray(mean), np.asarray(std)

    t0 = time.perf_counter()
    pool = inner.propose(predict, exclude, problem.seeds, np.random.default_rng(seed))
    seconds = time.perf_counter() - t0
    return {
        "space": problem.name,
        "strategy": strategy,
        "seed": seed,
        "seconds": seconds,
        "rows_predicted": rows,
        "rows_per_s": rows / seconds,
        "pool": len(pool),
        "best_predicted": float(pool.mean.max()) if len(pool) else None,
    }


def summarise(results: list[dict[str, Any]], info: str) -> str:
    lines = [
        "# Inner-search throughput",
        "",
        info,
        "",
        "| space | strategy | s / round | rows predicted | rows / s | pool |",
        "|---|---|---|---|---|---|",
    ]
    keys = dict.fromkeys((r["space"], r["strategy"]) for r in results)
    for space, strategy in keys:
        rs = [r for r in results if r["space"] == space and r["strategy"] == strategy]
        med = {k: statistics.median(r[k] for r in rs) for k in ("seconds", "rows_predicted")}
        rate = statistics.median(r["rows_per_s"] for r in rs)
        pool = statistics.median(r["pool"] for r in rs)
        lines.append(
            f"| {space} | {strategy} | {med['seconds']:.2f} | {med['rows_predicted']:.0f} | "
            f"{rate:,.0f} | {pool:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--spaces", nargs="+", default=["nb201", "ofa-mbv3"])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    builders = {"nb201": nb201_problem, "ofa-mbv3": ofa_problem}
    unknown = set(args.spaces) - set(builders)
    if unknown:
        parser.error(f"unknown space(s) {sorted(unknown)}; known: {sorted(builders)}")
    results: list[dict[str, Any]] = []
    load_before = os.getloadavg()[0]
    for name in args.spaces:
        problem = builders[name](0)
        for strategy in STRATEGIES:
            if strategy == "exhaustive" and not hasattr(problem.space, "all_archs"):
                continue
            for seed in range(args.repeats):
                r = measure(problem, strategy, seed)
                results.append(r)
                print(
                    f"{name:9s} {strategy:10s} seed {seed}: {r['seconds']:.2f}s "
                    f"{r['rows_per_s']:,.0f} rows/s pool {r['pool']}",
                    flush=True,
                )
    info = (
        f"Run: `python benchmarks/inner_search.py --repeats {args.repeats}` on "
        f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), "
        f"Python {platform.python_version()}; medians over {args.repeats} rounds. "
        "One round = one `propose()` call of the strategy with a cold feature cache "
        "(featurization, latency and the accuracy predictor's 5-member ensemble "
        "included); population searches use the loop's defaults (100 x 20 generations). "
        f"Load average (1 min) {load_before:.2f} before, {os.getloadavg()[0]:.2f} after."
    )
    text = summarise(results, info)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "inner_search.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "inner_search.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
