"""Where should the search loop's initial design be drawn: the whole space, or
only the architectures that meet the latency budget?

Problem: NAS-Bench-201 CIFAR-10 accuracy with a device's measured latency
(bundled tables), budgets at the 25th, 50th and 75th latency percentile, as in
``benchmarks/search_efficiency.py``. For each seed the loop's default accuracy
predictor is fitted on ``--n`` random cells drawn either uniformly from the
whole space (``space``) or only among the cells under the budget
(``feasible``); it then ranks every unmeasured cell under the budget by
predicted accuracy. Reported: the rank of the first cell within 0.2 points of
the oracle, i.e. how many further real evaluations a search that trusts the
predictor would spend after the design (``>200``: not in the top 200), and
how often that rank is at most 50.

Usage::

    python benchmarks/initial_design.py --seeds 20

Results: ``benchmarks/results/initial_design.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
DEVICES = ("pixel3", "fpga")
QUANTILES = (25, 50, 75)
DESIGNS = ("space", "feasible")
TOLERANCE = 0.2
#: Ranks beyond this are reported as censored (">TOP").
TOP = 200


def first_hit_rank(
    X: np.ndarray, acc: np.ndarray, lat: np.ndarray, budget: float, train: np.ndarray, seed: int
) -> int | None:
    """1-based rank, by predicted accuracy among unmeasured cells under ``budget``,
    of the first one within ``TOLERANCE`` of the oracle (None past ``TOP``)."""
    from nas.loop import default_predictor

    model = default_predictor(seed)
    model.fit(X[train], acc[train])
    feasible = np.setdiff1d(np.flatnonzero(lat <= budget), train)
    mean, _ = model.predict_with_uncertainty(X[feasible])
    ranked = feasible[np.argsort(-mean, kind="stable")][:TOP]
    oracle = float(acc[lat <= budget].max())
    hits = np.flatnonzero(acc[ranked] >= oracle - TOLERANCE - 1e-9)
    return int(hits[0]) + 1 if hits.size else None


def run(devices: Sequence[str], seeds: int, n: int) -> list[dict[str, Any]]:
    from nas import TabularEvaluator

    ev = TabularEvaluator()
    X = ev.space.encode_many(ev.space.all_archs())
    acc = ev.all_accuracy
    rows = []
    for device in devices:
        lat = ev.latency(device).values
        for q in QUANTILES:
            budget = float(np.percentile(lat, q))
            under = np.flatnonzero(lat <= budget)
            for design in DESIGNS:
                for seed in range(seeds):
                    rng = np.random.default_rng(seed)
                    pool = np.arange(len(acc)) if design == "space" else under
                    train = rng.choice(pool, size=n, replace=False)
                    rank = first_hit_rank(X, acc, lat, budget, train, seed)
                    rows.append(
                        {"device": device, "q": q, "design": design, "seed": seed, "rank": rank}
                    )
    return rows


def _median(ranks: list[int | None]) -> str:
    med = float(np.median([np.inf if r is None else r for r in ranks]))
    return f">{TOP}" if not np.isfinite(med) else f"{med:g}"


def summarise(rows: list[dict[str, Any]], info: str, n: int) -> str:
    lines = [
        "# Initial design: the whole space or only the feasible cells",
        "",
        info,
        "",
        f"Predictor fitted on {n} random cells; rank (by predicted accuracy, among the "
        "unmeasured cells under the budget) of the first cell within "
        f"{TOLERANCE} points of the oracle. Median over seeds (`>{TOP}`: not in the top "
        f"{TOP}), and the share of seeds where it is in the top 50.",
        "",
        "| device | budget | space: median rank | space: top 50 | "
        "feasible: median rank | feasible: top 50 |",
        "|---|---|---|---|---|---|",
    ]
    for device in dict.fromkeys(r["device"] for r in rows):
        for q in QUANTILES:
            cells = [f"{device}", f"p{q}"]
            for design in DESIGNS:
                ranks = [
                    r["rank"]
                    for r in rows
                    if r["device"] == device and r["q"] == q and r["design"] == design
                ]
                top50 = sum(r is not None and r <= 50 for r in ranks) / len(ranks)
                cells += [_median(ranks), f"{top50:.0%}"]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", nargs="+", default=list(DEVICES))
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--n", type=int, default=50, help="size of the initial design")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.n < 5:
        parser.error("--seeds must be >= 1 and --n >= 5 (the predictor's minimum)")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    t0 = time.perf_counter()
    rows = run(args.devices, args.seeds, args.n)
    info = (
        f"Run: `python benchmarks/initial_design.py --seeds {args.seeds} --n {args.n}` "
        f"on {os.cpu_count()} CPU cores ({platform.machine()}), Python "
        f"{platform.python_version()}, {time.perf_counter() - t0:.0f} s; the loop's "
        "default accuracy predictor (`nas.loop.default_predictor`)."
    )
    text = summarise(rows, info, args.n)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "initial_design.md").write_text(text)
    (args.out / "initial_design.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(text)


if __name__ == "__main__":
    main()
