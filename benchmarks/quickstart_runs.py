"""Shared by the main-job benchmarks: run quickstart steps in a fresh home, keep rows.

Each run gets its own empty hwnas home (an embedded SQLite database), so that
nothing an earlier run stored is reused: every run registers the CPU, measures
and fits from scratch, as a new user's first ``hwnas quickstart`` does. Rows
are appended to a JSON-lines file as runs finish, so a benchmark resumes
after an interruption by skipping the seeds that are there.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "append_row",
    "current_rows",
    "environment",
    "predictor_recipe",
    "read_jsonl",
    "read_rows",
    "run_steps",
]


def run_steps(
    seed: int, step_prefixes: Sequence[str] | None = None, **options: Any
) -> tuple[dict[str, Any], list[str], float]:
    """Run the quickstart steps whose names start with one of ``step_prefixes``
    (all six when None) with ``QuickstartOptions(seed=seed, **options)`` in a
    fresh temporary home; returns the steps' output, the lines they reported
    and the wall seconds."""
    import optuna

    from service.orchestration.quickstart import QuickstartOptions, steps
    from service.runtime import Runtime
    from service.settings import load_settings

    logging.getLogger("alembic").setLevel(logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    opts = QuickstartOptions(seed=seed, bars=False, **options)
    chosen = [
        s for s in steps() if step_prefixes is None or s.name.startswith(tuple(step_prefixes))
    ]
    lines: list[str] = []

    def report(line: str) -> None:
        lines.append(line)
        print(f"[seed {seed}] {line}", flush=True)

    out: dict[str, Any] = {"steps": []}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hwnas-bench-home-") as home:
        settings = load_settings(home=Path(home), database_url=f"sqlite:///{home}/hwnas.db")
        with Runtime.open(settings) as rt:
            for step in chosen:
                t0 = time.perf_counter()
                step.run(rt, opts, out, report)
                out["steps"].append(
                    {"step": step.name, "seconds": round(time.perf_counter() - t0, 1)}
                )
    return out, lines, time.perf_counter() - start


def predictor_recipe() -> dict[str, Any]:
    """What step 4 does now: how many subnets it measures and which derived
    features its predictor uses. A benchmark row of another recipe is stale."""
    from predictors.accuracy import predictor_features
    from service.orchestration.quickstart import QuickstartOptions
    from supernets import get_space

    features = predictor_features(get_space("ofa-mbv3-tiny"))
    return {
        "predictor_samples": QuickstartOptions().predictor_samples,
        "features": features if isinstance(features, str) else list(features.names),
    }


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every row of a JSON-lines file, in the order written (none if absent)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_rows(path: Path) -> dict[int, dict[str, Any]]:
    """Finished runs by seed (the last row of a seed wins)."""
    return {int(r["seed"]): r for r in read_jsonl(path)}


def current_rows(path: Path, wanted: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Finished runs by seed made under the recipe ``wanted`` (rows of other
    recipes stay in the file as a record)."""
    return {s: r for s, r in read_rows(path).items() if r.get("recipe") == wanted}


def append_row(path: Path, row: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(row, default=str) + "\n")


def environment() -> dict[str, Any]:
    import torch

    from predictors.latency.measure import cpu_model

    return {
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        # Evaluations run with torch's thread count (latency is measured with the
        # device's own, 1); on an oversubscribed machine 1 avoids OpenMP spinning.
        "torch_threads": torch.get_num_threads(),
        "nice": os.nice(0),
    }
