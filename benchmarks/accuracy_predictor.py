"""Accuracy predictors on NAS-Bench-201 CIFAR-10: ranking quality from few samples.

Protocol (per seed): shuffle the 15,625 cells; the first 5,000 are the
held-out set, the next ``n`` the training set (n = 50, 100, 200, 1000). Every
method sees the same split; encoding ``get_space("nb201").encode`` (30-dim
one-hot). Metrics from :mod:`predictors.metrics` on the held-out set: Kendall
tau, Spearman rho, top-50 precision (the true top 1%), RMSE; and tau / rho on
the held-out cells above 80% accuracy (the table's degenerate ~10% cells make
the full-set correlations easier than the ordering that matters for search).

Methods, all measured in the same run:

* ``hwnas``            — ``GBDTAccuracyPredictor(seed)``: the defaults (a
  mixed ensemble: 3 regression + 2 pairwise-ranking members).
* ``hwnas-pairwise``   — same, ``objective="pairwise"`` (all 5 members
  XGBoost ``rank:pairwise``).
* ``hwnas-regression`` — same, ``objective="regression"``.
* ``hwnas-raw``        — same, ``features="raw"`` (no choice-count features).
* ``hwnas-tuned``      — ``fit_with_report(tune=True)``: Optuna by 3-fold CV
  within ``--tune-timeout`` seconds (n >= 200 only; tuning on fewer samples
  is noise).
* ``xgb-default``      — ``xgboost.XGBRegressor()`` defaults on raw targets.
* ``lgbm-gbdtnas``     — LightGBM with GBDT-NAS's settings: 31 leaves,
  lr 0.05, feature fraction 0.9, bagging 0.8 every 5, 100 rounds (other
  parameters LightGBM's defaults, so at least 20 samples per leaf).
* ``lgbm-gbdtnas-leaf5`` — the same with 5 samples per leaf: LightGBM's
  default of 20 leaves few splits at n <= 200; this variant reproduces the
  reference numbers in REFERENCES.md (tau .416 / .709 at n = 100 / 1000).

Every model runs single-threaded; ``fit+predict`` is the wall time of fitting
on ``n`` and predicting the 5,000 held-out cells (``cpu`` its process CPU
time, less sensitive to other load on the machine).

Also measured: search-space pruning (``prune_space``) with GBDT-NAS's rule
(``confidence=0``), the default ``confidence=2``, and 3: size of the pruned
space, whether it still holds the benchmark's best cell, the best and mean
accuracy in it; and how well the ensemble's std tracks the error (Spearman
of std vs absolute error on the held-out set).

Usage::

    python benchmarks/accuracy_predictor.py                 # full run (~15 min on 2 cores)
    python benchmarks/accuracy_predictor.py --quick         # smoke test

Writes ``benchmarks/results/accuracy_predictor.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from predictors.accuracy import (  # noqa: E402
    GBDTAccuracyPredictor,
    choice_effects,
    fit_with_report,
    prune_space,
)
from predictors.metrics import kendall_tau, rmse, spearman_rho, top_k_precision  # noqa: E402
from supernets import get_space  # noqa: E402
from supernets.tables import nb201_accuracy  # noqa: E402

N_HELDOUT = 5000
TOP_K = 50
GOOD = 80.0  # "above 80% accuracy"
DEFAULT_CONFIDENCE = 2.0  # prune_space's default
CONFIDENCES = (0.0, 2.0, 3.0)


class Model(Protocol):
    def fit(self, X: np.ndarray, y: np.ndarray) -> Any: ...

    def predict(self, X: np.ndarray) -> np.ndarray: ...


class _Sklearn:
    """A scikit-learn-style regressor as a :class:`Model` (float64 predictions)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def fit(self, X: np.ndarray, y: np.ndarray) -> _Sklearn:
        self.model.fit(X, y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(X), dtype=np.float64)


def _xgb_default(seed: int) -> _Sklearn:
    import xgboost as xgb

    return _Sklearn(xgb.XGBRegressor(random_state=seed, n_jobs=1))


def _lgbm_gbdtnas(seed: int, min_child_samples: int = 20) -> _Sklearn:
    """GBDT-NAS's LightGBM settings (REFERENCES.md)."""
    import lightgbm as lgb

    return _Sklearn(
        lgb.LGBMRegressor(
            min_child_samples=min_child_samples,  # min_data_in_leaf
            num_leaves=31,
            learning_rate=0.05,
            colsample_bytree=0.9,  # feature_fraction
            subsample=0.8,  # bagging_fraction
            subsample_freq=5,  # bagging_freq
            n_estimators=100,
            random_state=seed,
            n_jobs=1,
            verbose=-1,
        )
    )


class _Tuned:
    def __init__(self, seed: int, timeout: float) -> None:
        self.seed, self.timeout = seed, timeout

    def fit(self, X: np.ndarray, y: np.ndarray) -> _Tuned:
        self.model, self.report = fit_with_report(
            X, y, seed=self.seed, tune=True, tune_timeout=self.timeout, cv=3
        )
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.model.predict(X)


def methods(tune_timeout: float) -> dict[str, tuple[Callable[[int], Model], int]]:
    """name -> (factory(seed), smallest n it runs at)."""
    return {
        "hwnas": (lambda s: GBDTAccuracyPredictor(seed=s), 0),
        "hwnas-pairwise": (lambda s: GBDTAccuracyPredictor(seed=s, objective="pairwise"), 0),
        "hwnas-regression": (lambda s: GBDTAccuracyPredictor(seed=s, objective="regression"), 0),
        "hwnas-raw": (lambda s: GBDTAccuracyPredictor(seed=s, features="raw"), 0),
        "hwnas-tuned": (lambda s: _Tuned(s, tune_timeout), 200),
        "xgb-default": (_xgb_default, 0),
        "lgbm-gbdtnas": (_lgbm_gbdtnas, 0),
        "lgbm-gbdtnas-leaf5": (lambda s: _lgbm_gbdtnas(s, min_child_samples=5), 0),
    }


def load_nb201() -> tuple[Any, list[Any], np.ndarray, np.ndarray]:
    space = get_space("nb201")
    acc = nb201_accuracy()
    archs = [space.validate(s) for s in sorted(acc)]
    X = space.encode_many(archs)
    y = np.array([acc[str(a)] for a in archs])
    return space, archs, X, y


def split(n_total: int, n_train: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n_total)
    return perm[N_HELDOUT : N_HELDOUT + n_train], perm[:N_HELDOUT]


def score(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    good = y_true > GOOD
    return {
        "kendall_tau": kendall_tau(y_true, y_pred),
        "spearman_rho": spearman_rho(y_true, y_pred),
        f"top{TOP_K}_precision": top_k_precision(y_true, y_pred, TOP_K),
        "rmse": rmse(y_true, y_pred),
        "kendall_tau_above80": kendall_tau(y_true[good], y_pred[good]),
        "spearman_rho_above80": spearman_rho(y_true[good], y_pred[good]),
    }


def run_predictors(
    X: np.ndarray,
    y: np.ndarray,
    ns: Sequence[int],
    seeds: Sequence[int],
    tune_timeout: float,
    only: Sequence[str] | None,
) -> list[dict[str, Any]]:
    rows = []
    for name, (factory, min_n) in methods(tune_timeout).items():
        if only and name not in only:
            continue
        for n, seed in itertools.product(ns, seeds):
            if n < min_n:
                continue
            train, test = split(len(y), n, seed)
            wall, cpu = time.perf_counter(), time.process_time()
            model = factory(seed).fit(X[train], y[train])
            pred = model.predict(X[test])
            row: dict[str, Any] = {
                "method": name,
                "n": n,
                "seed": seed,
                "fit_predict_s": time.perf_counter() - wall,
                "cpu_s": time.process_time() - cpu,
                **score(y[test], pred),
            }
            if isinstance(model, GBDTAccuracyPredictor):
                _, std = model.predict_with_uncertainty(X[test])
                row["std_vs_abs_error_rho"] = spearman_rho(std, np.abs(pred - y[test]))
            rows.append(row)
            print(
                f"{name:17s} n={n:5d} seed={seed} tau={row['kendall_tau']:.3f} "
                f"tau80={row['kendall_tau_above80']:.3f} {row['fit_predict_s']:.2f}s",
                flush=True,
            )
    return rows


def run_pruning(
    space: Any,
    archs: list[Any],
    X: np.ndarray,
    y: np.ndarray,
    ns: Sequence[int],
    seeds: Sequence[int],
) -> list[dict[str, Any]]:
    """Prune from each training set; judge the pruned space on the whole table."""
    best = float(y.max())
    params = [space.to_params(a) for a in archs]
    rows = []
    for n, seed in itertools.product(ns, seeds):
        train, _ = split(len(y), n, seed)
        predictor = GBDTAccuracyPredictor(seed=seed).fit(X[train], y[train])
        effects = choice_effects(space, predictor, X[train])
        for confidence in CONFIDENCES:
            result = prune_space(space, X[train], predictor=predictor, confidence=confidence)
            inside = np.array(
                [all(p[k] in v for k, v in result.choices.items()) for p in params], dtype=bool
            )
            rows.append(
                {
                    "n": n,
                    "seed": seed,
                    "confidence": confidence,
                    "cells": int(inside.sum()),
                    "kept_fraction": result.kept_fraction,
                    "has_best_cell": bool(y[inside].max() == best),
                    "best_accuracy": float(y[inside].max()),
                    "mean_accuracy": float(y[inside].mean()),
                    "top_helps": [e.name for e in effects[:3]],
                    "top_hurts": [e.name for e in effects[-3:]],
                }
            )
    return rows


def _mean_std(values: Sequence[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def summarise(result: dict[str, Any]) -> str:
    rows = result["predictors"]
    ns = sorted({r["n"] for r in rows})
    names = list(dict.fromkeys(r["method"] for r in rows))

    def cell(name: str, n: int, key: str) -> str:
        vals = [r[key] for r in rows if r["method"] == name and r["n"] == n]
        return _mean_std(vals) if vals else "–"

    meta = result["meta"]
    out = [
        "# Accuracy predictor benchmark — NAS-Bench-201 CIFAR-10",
        "",
        f"Generated by `benchmarks/accuracy_predictor.py` on {meta['date']} "
        f"({meta['machine']}; load average {meta['load_before']:.1f} before, "
        f"{meta['load_after']:.1f} after: the machine was shared, so wall times are "
        f"inflated, CPU times less so). {N_HELDOUT:,} held-out cells, seeds {meta['seeds']}, "
        "mean ± std over seeds. Every model single-threaded.",
        "",
        *_headline(rows),
        *USAGE,
    ]
    for key, title in [
        ("kendall_tau", "Kendall τ (all held-out cells)"),
        ("spearman_rho", "Spearman ρ (all held-out cells)"),
        ("kendall_tau_above80", "Kendall τ (held-out cells above 80%)"),
        ("spearman_rho_above80", "Spearman ρ (held-out cells above 80%)"),
        (f"top{TOP_K}_precision", f"Top-{TOP_K} precision (true top 1%)"),
        ("fit_predict_s", f"Fit + predict {N_HELDOUT:,} cells, wall seconds"),
        ("cpu_s", "Fit + predict, CPU seconds"),
    ]:
        out += [f"## {title}", "", "| method | " + " | ".join(f"n={n}" for n in ns) + " |"]
        out.append("|---|" + "---|" * len(ns))
        for name in names:
            out.append(f"| {name} | " + " | ".join(cell(name, n, key) for n in ns) + " |")
        out.append("")
    unc = [r for r in rows if r["method"] == "hwnas" and "std_vs_abs_error_rho" in r]
    if unc:
        out += [
            "## Uncertainty (hwnas)",
            "",
            "Spearman ρ between the ensemble's std and the absolute error on the held-out cells:",
            "",
            "| " + " | ".join(f"n={n}" for n in ns) + " |",
            "|" + "---|" * len(ns),
            "| " + " | ".join(cell("hwnas", n, "std_vs_abs_error_rho") for n in ns) + " |",
            "",
        ]
    pr = result.get("pruning") or []
    if pr:
        out += [
            "## Search-space pruning (`prune_space`, GBDT-NAS first order)",
            "",
            f"Pruned from the training set; judged on all 15,625 cells (best "
            f"{result['meta']['best_accuracy']:.2f}%, mean {result['meta']['mean_accuracy']:.2f}%).",
            "",
            "| n | rule | cells left (mean) | kept best cell | best acc (mean) | mean acc (mean) |",
            "|---|---|---|---|---|---|",
        ]
        for n in sorted({r["n"] for r in pr}):
            for conf in CONFIDENCES:
                sel = [r for r in pr if r["n"] == n and r["confidence"] == conf]
                rule = "GBDT-NAS: mean < 0" if conf == 0 else f"mean + {conf:g} se < 0"
                if conf == DEFAULT_CONFIDENCE:
                    rule += " (default)"
                out.append(
                    f"| {n} | {rule} | {np.mean([r['cells'] for r in sel]):.0f} | "
                    f"{sum(r['has_best_cell'] for r in sel)}/{len(sel)} | "
                    f"{np.mean([r['best_accuracy'] for r in sel]):.2f} | "
                    f"{np.mean([r['mean_accuracy'] for r in sel]):.2f} |"
                )
        first = pr[0]
        out += [
            "",
            f"Example (n={first['n']}, seed {first['seed']}): helps most "
            f"{', '.join(first['top_helps'])}; hurts most {', '.join(first['top_hurts'])}.",
            "",
        ]
    out += NOTES
    return "\n".join(out)


USAGE = [
    "## Using it",
    "",
    "```python",
    "from predictors.accuracy import GBDTAccuracyPredictor, fit_with_report, prune_space",
    "",
    "p = GBDTAccuracyPredictor(seed=0).fit(X, y)         # X: (n, d) encodings, y: accuracies",
    "mean, std = p.predict_with_uncertainty(X_new)        # ensemble mean and spread",
    "p.save('acc.json'); p = GBDTAccuracyPredictor.load('acc.json')",
    "p, report = fit_with_report(X, y, tune='auto')       # + cross-validated quality metrics",
    "pruned = prune_space(space, X, y)                    # per-choice SHAP effects, pruned choices",
    "```",
    "",
]


NOTES = [
    "## Notes",
    "",
    "- `hwnas` is a mixed ensemble (3 regression + 2 `rank:pairwise` members on rank-normalised"
    " targets, with choice-count features). All-pairwise has the best Kendall τ by a hair;"
    " regression has the best top-1% precision (its squared loss weighs the tails, where the best"
    " cells are); the mix keeps nearly all of the former and most of the latter at lower cost.",
    "- Choice-count features (`features='auto'`, counts per op found from the one-hot blocks)"
    " help most at small n (compare `hwnas-raw`); at n=1000 raw one-hot is on par or slightly better.",
    "- `lgbm-gbdtnas` with LightGBM's default 20 samples per leaf barely splits at n ≤ 200"
    " (τ = 0 at n = 50: constant predictions). With 5 per leaf (`lgbm-gbdtnas-leaf5`) it matches"
    " the numbers quoted in REFERENCES.md (.416 / .709).",
    "- Optuna tuning (`hwnas-tuned`, 3-fold CV, 20 s) buys about +0.01 τ at n = 1000 and nothing"
    " at n = 200 for ~10 CPU-seconds: `fit_with_report(tune='auto')` tunes from 200 samples on.",
    "- Pruning: GBDT-NAS's rule (drop every choice with a negative mean SHAP effect) often drops"
    " the benchmark's best cell at n ≤ 200; requiring the effect to be negative by 2 standard"
    " errors (the default) keeps it more often and still leaves 1-5% of the space.",
    "- Timings: the machine (2 cores) was shared with other jobs during the run (load average"
    " above); CPU seconds are the better measure of cost, wall seconds an upper bound.",
    "",
]


def _headline(rows: list[dict[str, Any]]) -> list[str]:
    """The numbers the issue asks about, with its targets."""

    def mean(name: str, n: int, key: str) -> float | None:
        vals = [r[key] for r in rows if r["method"] == name and r["n"] == n]
        return float(np.mean(vals)) if vals else None

    lines = ["## Summary", ""]
    for n, target in ((100, 0.60), (1000, 0.78)):
        ours = mean("hwnas", n, "kendall_tau")
        if ours is None:
            continue
        others = ", ".join(
            f"{name} {v:.3f}"
            for name in (
                "hwnas-pairwise",
                "xgb-default",
                "lgbm-gbdtnas",
                "lgbm-gbdtnas-leaf5",
                "hwnas-regression",
                "hwnas-raw",
                "hwnas-tuned",
            )
            if (v := mean(name, n, "kendall_tau")) is not None
        )
        verdict = "met" if ours >= target else "NOT met"
        lines.append(
            f"- n={n}: hwnas Kendall τ **{ours:.3f}** (target ≥ {target:.2f}: {verdict}); {others}."
        )
    walls = [r["fit_predict_s"] for r in rows if r["method"] == "hwnas" and r["n"] == 1000]
    cpu = mean("hwnas", 1000, "cpu_s")
    if walls and cpu is not None:
        lines.append(
            f"- Fit on 1,000 + predict 5,000: {cpu:.2f} s CPU (mean), wall {np.mean(walls):.2f} s "
            f"mean / {min(walls):.2f} s best of {len(walls)} (target < 2 s on 2 cores; "
            "one thread used)."
        )
    return [*lines, ""]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ns", type=int, nargs="+", default=[50, 100, 200, 1000])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--tune-timeout", type=float, default=20.0)
    parser.add_argument("--methods", nargs="+", default=None, help="subset of methods")
    parser.add_argument("--no-pruning", action="store_true")
    parser.add_argument("--quick", action="store_true", help="smoke test: n=50, 1 seed")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument(
        "--summarise-only", action="store_true", help="rewrite the .md from the saved .json"
    )
    args = parser.parse_args(argv)
    if args.summarise_only:
        saved: dict[str, Any] = json.loads((args.out / "accuracy_predictor.json").read_text())
        (args.out / "accuracy_predictor.md").write_text(summarise(saved) + "\n")
        return saved
    if args.quick:
        args.ns, args.seeds, args.tune_timeout = [50], 1, 2.0
    seeds = list(range(args.seeds))
    space, archs, X, y = load_nb201()
    result: dict[str, Any] = {
        "meta": {
            "date": time.strftime("%Y-%m-%d"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
            "seeds": seeds,
            "n_heldout": N_HELDOUT,
            "best_accuracy": float(y.max()),
            "mean_accuracy": float(y.mean()),
            "load_before": os.getloadavg()[0],
        },
        "predictors": run_predictors(X, y, args.ns, seeds, args.tune_timeout, args.methods),
        "pruning": [] if args.no_pruning else run_pruning(space, archs, X, y, args.ns, seeds),
    }
    result["meta"]["load_after"] = os.getloadavg()[0]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "accuracy_predictor.json").write_text(json.dumps(result, indent=1))
    (args.out / "accuracy_predictor.md").write_text(summarise(result) + "\n")
    return result


if __name__ == "__main__":
    main()
