"""Search efficiency on NAS-Bench-201: real evaluations needed to find the best
architecture under a latency budget, and hypervolume vs real evaluations.

Problem: CIFAR-10 accuracy (bundled NAS-Bench-201 table) vs the latency of one
device (bundled HW-NAS-Bench / HELP measurements). Budgets at the 25th, 50th
and 75th percentile of the device's latency; the oracle is the best accuracy
under the budget in the full table (15,625 cells).

Methods (every real evaluation = one table lookup, counted):

* ``ours``      — ``nas.run_search`` (default settings).
* ``random``    — uniform sampling without replacement (exact: a permutation
  of the whole table, so it is never truncated).
* ``tpe``       — Optuna's default ``TPESampler`` (v5) on real evaluations,
  no predictor; the latency constraint via ``trial.set_constraint``.
* ``nsga2``     — Optuna's ``NSGAIISampler`` (defaults), same set-up.
* ``ofa_evo``   — OFA's evolutionary search run on the accuracy predictor
  (``GBDTAccuracyPredictor`` with the library defaults: OFA uses no uncertainty): 50 random real evaluations, fit,
  evolution (population 100, 25% parents, mutation prob 0.1, half mutation
  half crossover, 100 generations instead of 500: the space is small, and the
  constraint by *bounded* rejection), evaluate the 50 predicted-best distinct
  unmeasured architectures of the final population, refit, repeat.

Plain baselines learn the latency from their evaluations (an infeasible
architecture costs an evaluation); ``ours`` and ``ofa_evo`` use the latency
table as their latency model, as the service uses its latency predictor.

Hypervolume runs: the same methods in multi-objective mode (accuracy and
latency), reference point (median latency, 91% accuracy), reported as a share
of the true front's hypervolume. Two settings: ``pareto`` tells every method
that can take a latency constraint the reference latency (``ours``:
``mode="pareto"`` with that ``budget_ms``; TPE / NSGA-II: ``set_constraint``;
``ofa_evo``: its 5 budgets at the 10th-50th latency percentile, 10
evaluations each per round; ``random`` samples everything), ``pareto_plain``
tells none of them.

Usage::

    nice python benchmarks/search_efficiency.py --device pixel3 --seeds 20 --jobs 2

Per-run results are cached in ``benchmarks/results/search_efficiency_runs.jsonl``
(an interrupted run resumes); the summary goes to
``benchmarks/results/search_efficiency.md`` and ``search_efficiency.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
QUANTILES = (25, 50, 75)
METHODS = ("ours", "random", "tpe", "nsga2", "ofa_evo")
CHECKPOINTS = (50, 100, 200)
#: Real-evaluation caps per method for the "evaluations to reach" numbers
#: (random is exact; a run that does not reach the target by its cap is censored).
CAPS = {"ours": 400, "tpe": 1000, "nsga2": 1000, "ofa_evo": 400}
HV_EVALS = 200
#: Length of the stored best-so-far curves (regret plot); runs stop early once
#: they have this many evaluations and have found the oracle.
CURVE_EVALS = 200
HV_REF_ACCURACY = 91.0
TOLERANCE = 0.2


# -- the problem ------------------------------------------------------------------------
class Problem:
    """Table-backed problem for one device (loaded once per process)."""

    def __init__(self, device: str) -> None:
        from nas import TabularEvaluator

        self.device = device
        self.evaluator = TabularEvaluator()
        self.space = self.evaluator.space
        self.latency = self.evaluator.latency(device)
        self.lat = self.latency.values
        self.acc = self.evaluator.all_accuracy
        self.index_of = {str(a): i for i, a in enumerate(self.space.all_archs())}

    def budget(self, q: float) -> float:
        return float(np.percentile(self.lat, q))

    def oracle(self, budget: float) -> float:
        return float(self.acc[self.lat <= budget].max())

    def hv_ref(self) -> tuple[float, float]:
        return float(np.median(self.lat)), HV_REF_ACCURACY

    def true_hv(self) -> float:
        from nas import hypervolume_2d

        return hypervolume_2d(self.lat, self.acc, self.hv_ref())


_PROBLEMS: dict[str, Problem] = {}


def problem(device: str) -> Problem:
    if device not in _PROBLEMS:
        _PROBLEMS[device] = Problem(device)
    return _PROBLEMS[device]


# -- methods: each returns the evaluated official indices, in order -----------------------
Done = Callable[[list[int]], bool]


def never(order: list[int]) -> bool:
    return False


def run_ours(
    p: Problem, budget: float | None, n: int, seed: int, done: Done = never, pareto: bool = False
) -> list[int]:
    import optuna

    from nas import run_search

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    order: list[int] = []
    run_search(
        p.space,
        p.evaluator,
        p.latency,
        budget,
        n,
        seed=seed,
        mode="pareto" if pareto else "budget",
        on_evaluation=lambda e: order.append(p.index_of[str(e.arch)]),
        should_stop=lambda: done(order),
    )
    return order


def run_random(
    p: Problem, budget: float | None, n: int, seed: int, done: Done = never, pareto: bool = False
) -> list[int]:
    return [int(i) for i in np.random.default_rng(seed).permutation(len(p.acc))[:n]]


def _run_optuna(
    p: Problem, budget: float | None, n: int, seed: int, sampler: Any, done: Done, pareto: bool
) -> list[int]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if pareto:
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    else:
        study = optuna.create_study(direction="maximize", sampler=sampler)
    choices = p.space.choices()
    out: list[int] = []
    seen: set[int] = set()
    # Optuna may propose an architecture twice; a repeat costs no new real
    # evaluation (a cache answers it), so it is told but not counted. Bounded.
    for _ in range(20 * n):
        if len(out) >= n or done(out):
            break
        trial = study.ask()
        arch = p.space.from_params({k: trial.suggest_categorical(k, v) for k, v in choices.items()})
        i = p.index_of[str(arch)]
        acc, lat = float(p.acc[i]), float(p.lat[i])
        if budget is not None:
            trial.set_constraint("latency", lat - budget)
        study.tell(trial, [acc, lat] if pareto else acc)
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


def run_tpe(
    p: Problem, budget: float | None, n: int, seed: int, done: Done = never, pareto: bool = False
) -> list[int]:
    import optuna

    return _run_optuna(p, budget, n, seed, optuna.samplers.TPESampler(seed=seed), done, pareto)


def run_nsga2(
    p: Problem, budget: float | None, n: int, seed: int, done: Done = never, pareto: bool = False
) -> list[int]:
    import optuna

    return _run_optuna(p, budget, n, seed, optuna.samplers.NSGAIISampler(seed=seed), done, pareto)


def _evolution(
    p: Problem,
    predict: Callable[[np.ndarray], np.ndarray],
    budget: float,
    rng: np.random.Generator,
    *,
    population: int = 100,
    generations: int = 100,
    parent_ratio: float = 0.25,
    mutate_prob: float = 0.1,
    max_tries: int = 100,
) -> list[int]:
    """OFA's evolution finder on the predictor; returns the final population (indices)."""
    space = p.space
    feasible = np.flatnonzero(p.lat <= budget)
    if feasible.size == 0:
        return []

    def idx(arch: Any) -> int:
        return p.index_of[str(arch)]

    def constrained(make: Callable[[], Any]) -> int | None:
        for _ in range(max_tries):  # OFA loops forever here; we give up
            i = idx(make())
            if p.lat[i] <= budget:
                return i
        return None

    pop = [int(i) for i in rng.choice(feasible, size=population)]
    n_parents = round(parent_ratio * population)
    n_mut = (population - n_parents) // 2
    all_archs = _all_archs(p)
    X_all = _X_all(p)
    for _ in range(generations):
        scores = predict(X_all[pop])
        order = np.argsort(-scores)
        parents = [pop[j] for j in order[:n_parents]]
        children: list[int] = []
        for _ in range(n_mut):
            parent = all_archs[parents[int(rng.integers(len(parents)))]]
            child = constrained(partial(space.mutate, parent, rng, mutate_prob))
            children.append(child if child is not None else idx(parent))
        for _ in range(population - n_parents - n_mut):
            a = all_archs[parents[int(rng.integers(len(parents)))]]
            b = all_archs[parents[int(rng.integers(len(parents)))]]
            child = constrained(partial(space.crossover, a, b, rng))
            children.append(child if child is not None else idx(a))
        pop = parents + children
    return pop


_ARCH_CACHE: dict[str, Any] = {}


def _all_archs(p: Problem) -> list[Any]:
    key = "archs"
    if key not in _ARCH_CACHE:
        _ARCH_CACHE[key] = p.space.all_archs()
    return _ARCH_CACHE[key]


def _X_all(p: Problem) -> np.ndarray:
    key = "X"
    if key not in _ARCH_CACHE:
        _ARCH_CACHE[key] = p.space.encode_many(_all_archs(p))
    return _ARCH_CACHE[key]


def run_ofa_evo(
    p: Problem, budget: float | None, n: int, seed: int, done: Done = never, pareto: bool = False
) -> list[int]:
    from predictors.accuracy import GBDTAccuracyPredictor

    rng = np.random.default_rng(seed)
    X_all = _X_all(p)
    batch = 50
    out: list[int] = [int(i) for i in rng.permutation(len(p.acc))[: min(batch, n)]]
    seen = set(out)
    budgets = (
        [float(np.percentile(p.lat, q)) for q in (10, 20, 30, 40, 50)]
        if pareto or budget is None
        else [budget]
    )
    for round_no in range(n):  # bounded: each round adds >= 1 or stops
        if len(out) >= n or done(out):
            break
        model = GBDTAccuracyPredictor(seed=seed * 1000 + round_no, n_jobs=1)
        model.fit(X_all[out], p.acc[out])
        per_budget = max(1, min(n - len(out), batch) // len(budgets))
        added = 0
        for b in budgets:
            final = _evolution(p, model.predict, b, rng)
            ranked = [final[j] for j in np.argsort(-model.predict(X_all[final]))]
            picked: list[int] = []
            for i in ranked:
                if i not in seen and i not in picked and len(picked) < per_budget:
                    picked.append(i)
            if len(picked) < per_budget:  # population converged: next predicted-best feasible
                cand = np.flatnonzero(p.lat <= b)
                pred = model.predict(X_all[cand])
                for i in cand[np.argsort(-pred)]:
                    if len(picked) >= per_budget:
                        break
                    if int(i) not in seen and int(i) not in picked:
                        picked.append(int(i))
            for i in picked[: n - len(out)]:
                out.append(i)
                seen.add(i)
                added += 1
        if added == 0:
            break
    return out


RUNNERS: dict[str, Callable[[Problem, float | None, int, int, Done, bool], list[int]]] = {
    "ours": run_ours,
    "random": run_random,
    "tpe": run_tpe,
    "nsga2": run_nsga2,
    "ofa_evo": run_ofa_evo,
}


# -- metrics ---------------------------------------------------------------------------
def best_curve(p: Problem, order: Sequence[int], budget: float) -> np.ndarray:
    """Best feasible accuracy after each evaluation (-inf before the first feasible)."""
    idx = np.asarray(order, dtype=np.int64)
    acc = np.where(p.lat[idx] <= budget, p.acc[idx], -np.inf)
    return np.maximum.accumulate(acc) if acc.size else acc


def evals_to(curve: np.ndarray, target: float) -> int | None:
    hit = np.flatnonzero(curve >= target - 1e-9)
    return int(hit[0]) + 1 if hit.size else None


def hv_curve(p: Problem, order: Sequence[int], checkpoints: Sequence[int]) -> list[float]:
    from nas import hypervolume_2d

    ref, total = p.hv_ref(), p.true_hv()
    idx = np.asarray(order, dtype=np.int64)
    return [hypervolume_2d(p.lat[idx[:c]], p.acc[idx[:c]], ref) / total for c in checkpoints]


# -- one task ----------------------------------------------------------------------------
def task_key(kind: str, device: str, q: int | None, method: str, seed: int) -> str:
    return f"{kind}|{device}|{q}|{method}|{seed}"


def run_task(kind: str, device: str, q: int | None, method: str, seed: int) -> dict[str, Any]:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    p = problem(device)
    t0 = time.perf_counter()
    if kind == "budget":
        assert q is not None
        budget = p.budget(q)
        n = len(p.acc) if method == "random" else CAPS[method]
        oracle = p.oracle(budget)
        feasible = p.lat <= budget

        def done(order: list[int]) -> bool:
            # Nothing left to measure: the oracle is found and the regret curve is long enough.
            if len(order) < CURVE_EVALS:
                return False
            idx = np.asarray(order)
            return bool((p.acc[idx][feasible[idx]] >= oracle - 1e-9).any())

        order = RUNNERS[method](p, budget, n, seed, done, False)
        curve = best_curve(p, order, budget)
        row: dict[str, Any] = {
            "budget_ms": budget,
            "oracle": oracle,
            "n_evaluated": len(order),
            "evals_to_oracle": evals_to(curve, oracle),
            "evals_to_tol": evals_to(curve, oracle - TOLERANCE),
            "regret": [
                None
                if c > len(curve) or not np.isfinite(curve[c - 1])
                else oracle - float(curve[c - 1])
                for c in CHECKPOINTS
            ],
            "curve": [
                None if not np.isfinite(v) else round(float(v), 4) for v in curve[:CURVE_EVALS]
            ],
        }
    else:
        # "pareto": methods that can take a latency bound get the reference point's
        # (median latency); "pareto_plain": no bound at all.
        box = p.hv_ref()[0] if kind == "pareto" else None
        order = RUNNERS[method](p, box, HV_EVALS, seed, never, True)
        checkpoints = list(range(10, HV_EVALS + 1, 10))
        row = {
            "n_evaluated": len(order),
            "hv_checkpoints": checkpoints,
            "hv": hv_curve(p, order, checkpoints),
        }
    row.update(
        kind=kind,
        device=device,
        q=q,
        method=method,
        seed=seed,
        seconds=round(time.perf_counter() - t0, 2),
        key=task_key(kind, device, q, method, seed),
    )
    return row


# -- summary -----------------------------------------------------------------------------
def _median_censored(values: Sequence[int | None], cap: int | None) -> str:
    """Median with unreached runs counted as +inf (so a median above the cap reads '>cap')."""
    arr = np.array([math.inf if v is None else v for v in values], dtype=float)
    med = float(np.median(arr))
    if math.isinf(med):
        return f">{cap}"
    return f"{med:.0f}" if med == int(med) else f"{med:.1f}"


def _median_value(values: Sequence[int | None]) -> float:
    arr = np.array([math.inf if v is None else v for v in values], dtype=float)
    return float(np.median(arr))


def summarise(
    rows: list[dict[str, Any]], device: str, out_dir: Path, seeds: int, run_info: str
) -> str:
    budget_rows = [r for r in rows if r["kind"] == "budget" and r["device"] == device]
    hv_rows = [r for r in rows if r["kind"] == "pareto" and r["device"] == device]
    methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
    lines = [
        f"# Search efficiency on NAS-Bench-201 (CIFAR-10) with {device} latency",
        "",
        "Generated by `benchmarks/search_efficiency.py`; every number is a median over "
        f"{seeds} seeds. A *real evaluation* is one accuracy lookup in the table.",
        "",
        run_info,
        "",
        "## Real evaluations to reach the oracle (best accuracy under the budget)",
        "",
        f"`>N`: the median run had not reached it after N evaluations (its cap). "
        f"Caps: {', '.join(f'{m} {c}' for m, c in CAPS.items())}; random is exact (no cap).",
        "",
    ]
    header = "| budget | oracle | metric | " + " | ".join(methods) + " |"
    lines += [header, "|" + "---|" * (3 + len(methods))]
    speedups = []
    for q in QUANTILES:
        rq = [r for r in budget_rows if r["q"] == q]
        if not rq:
            continue
        b, o = rq[0]["budget_ms"], rq[0]["oracle"]
        for metric, label in (
            ("evals_to_tol", f"evals to oracle − {TOLERANCE}"),
            ("evals_to_oracle", "evals to oracle"),
        ):
            cells, med = [], {}
            for m in methods:
                vals = [r[metric] for r in rq if r["method"] == m]
                med[m] = _median_value(vals)
                cells.append(_median_censored(vals, CAPS.get(m)) if vals else "—")
            lines.append(f"| p{q} = {b:.2f} ms | {o:.2f} | {label} | " + " | ".join(cells) + " |")
            if metric == "evals_to_tol":
                speedups.append((q, med))
    lines += [
        "",
        "Speed-up of `ours` (ratio of median evaluations to reach oracle − 0.2; "
        "a censored baseline gives a lower bound, shown with ≥):",
        "",
    ]
    for q, med in speedups:
        if "ours" in med and math.isinf(med["ours"]):
            # Our median run never got there: no ratio is known, only that ours
            # needed more than its cap.
            lines.append(f"- p{q}: none (`ours` did not reach it within {CAPS['ours']})")
            continue
        parts = []
        for m in methods:
            if m == "ours" or "ours" not in med:
                continue
            ratio = med[m] / med["ours"]
            bound = "≥" if math.isinf(med[m]) else ""
            if math.isinf(med[m]):
                ratio = CAPS.get(m, 0) / med["ours"]
            parts.append(f"{m} {bound}{ratio:.1f}×")
        lines.append(f"- p{q}: " + ", ".join(parts))
    lines += ["", "## Regret (oracle − best feasible accuracy found), median over seeds", ""]
    lines += [
        "| budget | evaluations | " + " | ".join(methods) + " |",
        "|" + "---|" * (2 + len(methods)),
    ]
    for q in QUANTILES:
        rq = [r for r in budget_rows if r["q"] == q]
        if not rq:
            continue
        for ci, c in enumerate(CHECKPOINTS):
            cells = []
            for m in methods:
                vals = [r["regret"][ci] for r in rq if r["method"] == m]
                arr = np.array([math.inf if v is None else v for v in vals], dtype=float)
                cells.append(
                    "—"
                    if not vals
                    else ("∞" if math.isinf(np.median(arr)) else f"{np.median(arr):.2f}")
                )
            lines.append(f"| p{q} | {c} | " + " | ".join(cells) + " |")
    ref_ms = problem(device).hv_ref()[0]
    for kind, title, note in (
        (
            "pareto",
            "with the latency bound",
            f"Every method that can take a latency constraint is told the reference "
            f"point's latency ({ref_ms:.2f} ms): `ours` runs `mode='pareto'` with "
            "`budget_ms` = that latency, TPE and NSGA-II get it through "
            "`trial.set_constraint` (multi-objective studies), `ofa_evo` searches under "
            "its 5 budgets (10th-50th latency percentile, all inside); `random` samples "
            "the whole space.",
        ),
        (
            "pareto_plain",
            "without a latency bound",
            "Plain multi-objective runs over the whole space (no method is told the "
            "reference point; `ofa_evo` keeps its 5 budgets).",
        ),
    ):
        kind_rows = [r for r in rows if r["kind"] == kind and r["device"] == device]
        if not kind_rows:
            continue
        lines += [
            "",
            f"## Hypervolume (accuracy vs latency), {title}",
            "",
            f"Share of the true front's hypervolume; reference point: median latency "
            f"({ref_ms:.2f} ms) and {HV_REF_ACCURACY}% accuracy. Median over seeds. {note}",
            "",
            "| evaluations | " + " | ".join(methods) + " |",
            "|" + "---|" * (1 + len(methods)),
        ]
        for c in CHECKPOINTS:
            cells = []
            for m in methods:
                rm = [r for r in kind_rows if r["method"] == m]
                if not rm or c not in rm[0]["hv_checkpoints"]:
                    cells.append("—")
                    continue
                j = rm[0]["hv_checkpoints"].index(c)
                cells.append(f"{np.median([r['hv'][j] for r in rm]):.3f}")
            lines.append(f"| {c} | " + " | ".join(cells) + " |")
    secs = {
        m: np.median([r["seconds"] for r in rows if r["method"] == m and r["device"] == device])
        for m in methods
    }
    lines += [
        "",
        "Median wall time per run (s): " + ", ".join(f"{m} {s:.1f}" for m, s in secs.items()),
        "",
    ]
    text = "\n".join(lines) + "\n"
    _plot(
        budget_rows, hv_rows, methods, device, out_dir / f"search_efficiency{_suffix(device)}.png"
    )
    return text


def _suffix(device: str) -> str:
    return "" if device == "pixel3" else f"_{device}"


def _plot(
    budget_rows: list[dict[str, Any]],
    hv_rows: list[dict[str, Any]],
    methods: list[str],
    device: str,
    path: Path,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(18, 4.2))
    for ax, q in zip(axes[:3], QUANTILES, strict=True):
        rq = [r for r in budget_rows if r["q"] == q]
        for m in methods:
            curves = [r["curve"] for r in rq if r["method"] == m]
            if not curves:
                continue
            n = min(len(c) for c in curves)
            arr = np.array(
                [[np.nan if v is None else v for v in c[:n]] for c in curves], dtype=float
            )
            oracle = rq[0]["oracle"]
            regret = np.where(np.isnan(arr), 100.0, oracle - arr)
            med = np.median(regret, axis=0)
            ax.plot(np.arange(1, n + 1), np.maximum(med, 1e-3), label=m)
        ax.set_yscale("log")
        ax.set_xlabel("real evaluations")
        ax.set_ylabel("regret (accuracy points, median)")
        ax.set_title(f"{device}, budget p{q} ({rq[0]['budget_ms']:.2f} ms)" if rq else f"p{q}")
        ax.axhline(TOLERANCE, color="grey", lw=0.8, ls="--")
        ax.set_ylim(1e-3, 20)
        ax.grid(alpha=0.3)
    ax = axes[3]
    for m in methods:
        rm = [r for r in hv_rows if r["method"] == m]
        if rm:
            ax.plot(rm[0]["hv_checkpoints"], np.median([r["hv"] for r in rm], axis=0), label=m)
    ax.set_xlabel("real evaluations")
    ax.set_ylabel("hypervolume / true front's (median)")
    ax.set_title("accuracy-latency hypervolume")
    ax.grid(alpha=0.3)
    for ax in axes:  # the legend goes on the first panel that has lines
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
            break
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- driver ------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="pixel3")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument(
        "--kinds",
        nargs="+",
        default=["budget", "pareto", "pareto_plain"],
        choices=["budget", "pareto", "pareto_plain"],
    )
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--fresh", action="store_true", help="ignore cached runs of these methods")
    args = parser.parse_args(argv)
    from nas import SearchSettings

    args.out.mkdir(parents=True, exist_ok=True)
    cache = args.out / f"search_efficiency{_suffix(args.device)}_runs.jsonl"
    rows: dict[str, dict[str, Any]] = {}
    if cache.exists():
        for line in cache.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                rows[r["key"]] = r
    if args.fresh:
        rows = {k: r for k, r in rows.items() if r["method"] not in args.methods}
        cache.write_text("".join(json.dumps(r) + "\n" for r in rows.values()))
    tasks: list[tuple[str, str, int | None, str, int]] = []
    for seed in range(args.seeds):
        for method in args.methods:
            if "budget" in args.kinds:
                tasks += [("budget", args.device, q, method, seed) for q in QUANTILES]
            tasks += [(k, args.device, None, method, seed) for k in args.kinds if k != "budget"]
    todo = [t for t in tasks if task_key(*t) not in rows]
    print(f"{len(tasks)} runs, {len(todo)} to do, {args.jobs} processes", flush=True)
    t0 = time.time()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool, cache.open("a") as fh:
        futures = {pool.submit(run_task, *t): t for t in todo}
        for k, fut in enumerate(as_completed(futures), 1):
            r = fut.result()
            rows[r["key"]] = r
            fh.write(json.dumps(r) + "\n")
            fh.flush()
            if k % 10 == 0 or k == len(todo):
                print(f"  {k}/{len(todo)} done, {time.time() - t0:.0f}s", flush=True)
    selected = [r for r in rows.values() if r["seed"] < args.seeds]
    info = (
        f"Run: `nice python benchmarks/search_efficiency.py --device {args.device} --seeds {args.seeds} "
        f"--jobs {args.jobs}` on {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), "
        f"Python {platform.python_version()}. `ours` = `run_search` with its defaults: "
        f"`{SearchSettings()!r}`; accuracy predictor = the loop's default "
        "(`GBDTAccuracyPredictor()`, 5 members, not bootstrapped with these settings). "
        "Runs stop once they have "
        f"{CURVE_EVALS} evaluations and have found the oracle; the machine was shared "
        "with other jobs, so wall times are indicative only."
    )
    text = summarise(selected, args.device, args.out, args.seeds, info)
    (args.out / f"search_efficiency{_suffix(args.device)}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
