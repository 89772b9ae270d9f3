"""Main job: does the search's predicted latency agree with what this CPU measures?

    nice -n 15 python benchmarks/main_job_latency.py [--runs 5] [--first-seed 0]
        [--search-evaluations 18] [--all-steps]

Runs the quickstart's steps (``service.orchestration.quickstart``, the
steps of ``hwnas quickstart`` through the library) ``--runs`` times, each in
a fresh home with its own seed: the shipped supernet, this CPU registered
from 10 reference measurements, the search under a latency budget, which
measures the promising subnets for real. The steps that do not enter the
latency check (the NAS-Bench-201 search, step 4's accuracy predictor, the
export) run only with ``--all-steps``, and the search makes
``--search-evaluations`` real evaluations (the quickstart's 30 with
``--all-steps``): on a machine shared by many jobs that keeps a run within
minutes. Each of those checks is
interleaved with three of the registration's references (anchors), and the
drift since registration is divided out (``predictors.latency.anchored``).

Reports, over all checked subnets of all runs, the median of
|predicted - measured| / measured (target: at most 15 %), the same with the
raw measurement (no anchors) for comparison, the drift the anchors saw, and
which runs warned that the machine was too noisy to measure. Resumable: each
finished run is appended to ``main_job_latency.jsonl`` and skipped by a rerun;
a row made under another recipe (``quickstart_runs.predictor_recipe``: the
accuracy predictor's features decide which subnets the search checks) is
kept as a record and its seed runs again.

Writes ``benchmarks/results/main_job_latency.{jsonl,json,md}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from quickstart_runs import append_row, current_rows, environment, predictor_recipe, run_steps

RESULTS = Path(__file__).resolve().parent / "results"
STEM = "main_job_latency"
TARGET = 0.15


#: The steps a latency check needs (names' beginnings, see ``quickstart.steps``).
LATENCY_STEPS = ("the supernet", "register this CPU", "search the supernet")


def one_run(seed: int, all_steps: bool, search_evaluations: int) -> dict[str, Any]:
    env_start = environment()
    if all_steps:
        out, lines, seconds = run_steps(seed)
    else:
        out, lines, seconds = run_steps(seed, LATENCY_STEPS, search_evaluations=search_evaluations)
    fitted = out.get("accuracy_predictor")
    result = out["search"]["result"]
    checks = [
        {k: c.get(k) for k in ("arch_hash", "predicted_ms", "measured_ms", "raw_ms", "drift")}
        | {"anchor_ratios": c.get("anchor_ratios", []), "warnings": c.get("warnings", [])}
        for c in result.get("verified_latency", [])
    ]
    return {
        "seed": seed,
        "seconds": round(seconds, 1),
        "steps": out["steps"],
        "budget_ms": out["search"]["budget_ms"],
        "checks": checks,
        "registration_warnings": out["device"].get("warnings", []),
        "registration_quality": out["device"].get("quality", {}),
        "steps_run": [s["step"] for s in out["steps"]],
        "search_evaluations": result["n_evaluations"],
        "kendall_tau": None if fitted is None else fitted["metrics"]["metrics"]["kendall_tau"],
        "accuracy_predictor": None
        if fitted is None
        else {"n_train": fitted["n_train"], "metrics": fitted["metrics"]["metrics"]},
        # The search's accuracy predictor (its derived features) and step 4's
        # recipe: which subnets get checked depends on them.
        "recipe": predictor_recipe(),
        "warned": any("WARNING" in line for line in lines),
        "environment_start": env_start,
        "environment_end": environment(),
    }


def _errors(rows: list[dict[str, Any]], key: str) -> list[float]:
    return [
        abs(c["predicted_ms"] - c[key]) / c[key]
        for r in rows
        for c in r["checks"]
        if c.get("predicted_ms") is not None and c.get(key)
    ]


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    anchored, raw = _errors(rows, "measured_ms"), _errors(rows, "raw_ms")
    drifts = [c["drift"] for r in rows for c in r["checks"] if c.get("drift") is not None]
    median = float(np.median(anchored)) if anchored else None
    return {
        "runs": len(rows),
        "checked_subnets": len(anchored),
        "median_error": median,
        "median_error_raw": float(np.median(raw)) if raw else None,
        "median_error_per_run": [
            float(np.median(e)) if (e := _errors([r], "measured_ms")) else None for r in rows
        ],
        "drift_range": [min(drifts), max(drifts)] if drifts else None,
        "runs_that_warned": [r["seed"] for r in rows if r["warned"]],
        "target": TARGET,
        "met": median is not None and median <= TARGET and len(rows) >= 5,
    }


def markdown(summary: dict[str, Any], rows: list[dict[str, Any]], command: str) -> str:
    def pct(v: float | None) -> str:
        return "—" if v is None else f"{100 * v:.1f}%"

    lines = [
        "# Main job: predicted vs measured latency of the checked subnets",
        "",
        f"Command: `{command}`. Each run: the quickstart's steps in a fresh home (this CPU "
        "registered from 10 reference measurements, shipped supernet searched, the promising "
        "subnets measured for real, each interleaved with 3 of the registration's references "
        "as anchors; the drift since registration divided out).",
        "",
        "| seed | wall | budget (ms) | checked | predicted → measured (raw) ms | drift | "
        "median error | τ (step 4) | noisy? |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r, err in zip(rows, summary["median_error_per_run"], strict=True):
        pairs = ", ".join(
            f"{c['predicted_ms']:.2f} → {c['measured_ms']:.2f} ({c['raw_ms']:.2f})"
            for c in r["checks"]
            if c.get("predicted_ms") is not None
        )
        drift = ", ".join(f"{c['drift']:.2f}" for c in r["checks"] if c.get("drift"))
        noisy = "; ".join(sorted({w for c in r["checks"] for w in c["warnings"]}))
        noisy = noisy or ("registration: " + "; ".join(r["registration_warnings"])
                          if r["registration_warnings"] else "no")  # fmt: skip
        load = r["environment_start"]["load_average"][0]
        lines.append(
            f"| {r['seed']} | {r['seconds']:.0f} s (load {load:.1f}) | {r['budget_ms']:.3f} | "
            f"{len(r['checks'])} | {pairs} | {drift} | {pct(err)} | "
            f"{'—' if r['kendall_tau'] is None else format(r['kendall_tau'], '.3f')} | "
            f"{noisy} |"
        )
    verdict = "met" if summary["met"] else "not met"
    lines += [
        "",
        f"Median |predicted − measured| / measured over {summary['checked_subnets']} checked "
        f"subnets of {summary['runs']} runs: **{pct(summary['median_error'])}** (target ≤ "
        f"{100 * TARGET:.0f}% over at least 5 runs: **{verdict}**); with the raw measurements, "
        f"no anchors: {pct(summary['median_error_raw'])}. Drift the anchors saw: "
        + (
            f"{summary['drift_range'][0]:.2f}–{summary['drift_range'][1]:.2f}."
            if summary["drift_range"]
            else "—."
        ),
        "",
        f"Runs that warned the machine was too noisy: {summary['runs_that_warned'] or 'none'}.",
    ]
    if rows:
        env = rows[-1]["environment_end"]
        lines += [
            "",
            f"Machine: {env['cpu']}, {env['cpu_count']} cores (load per run in the table), "
            f"python {env['python']}, torch {env['torch']}, measured with 1 thread at nice "
            f"{env['nice']}.",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--search-evaluations", type=int, default=18)
    p.add_argument("--all-steps", action="store_true", help="all six quickstart steps")
    p.add_argument("--report", action="store_true", help="only rebuild the tables")
    args = p.parse_args()
    rows_path = RESULTS / f"{STEM}.jsonl"
    seeds = range(args.first_seed, args.first_seed + args.runs)
    wanted = predictor_recipe()
    if not args.report:
        for seed in seeds:
            if seed in current_rows(rows_path, wanted):
                continue
            append_row(rows_path, one_run(seed, args.all_steps, args.search_evaluations))
    done = current_rows(rows_path, wanted)
    rows = [done[s] for s in seeds if s in done]
    summary = summarise(rows)
    command = "python benchmarks/main_job_latency.py" + (
        f" --runs {args.runs}" if args.runs != 5 else ""
    )
    text = markdown(summary, rows, command)
    (RESULTS / f"{STEM}.json").write_text(json.dumps(summary | {"rows": rows}, indent=2) + "\n")
    (RESULTS / f"{STEM}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
