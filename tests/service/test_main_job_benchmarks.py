"""The protocols of the main job's benchmarks: step 4's recipe is chosen on a
development pool no reported seed draws, stale rows are not reported, and the
supernet benchmark's default is the best equal-budget schedule, its leads
judged per seed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from supernets import get_space
from supernets.schedules import DEFAULT_SCHEDULE


@pytest.fixture(scope="module")
def predictor_bench(load_benchmark: Callable[[str], ModuleType]) -> Any:
    return load_benchmark("main_job_predictor")


@pytest.fixture(scope="module")
def supernet_bench(load_benchmark: Callable[[str], ModuleType]) -> Any:
    return load_benchmark("supernet_quality")


def test_the_development_pool_is_apart_from_every_reported_seed(predictor_bench: Any) -> None:
    from service.orchestration.quickstart import QuickstartOptions

    b = predictor_bench
    assert b.DEV_SEED not in b.REPORT_SEEDS
    space = get_space(b.SPACE)
    n = QuickstartOptions().predictor_samples
    reported = set()
    for seed in b.REPORT_SEEDS:  # what step 4 samples with each reported seed
        rng = np.random.default_rng(seed)
        reported |= {space.arch_hash(space.sample(rng)) for _ in range(n)}
    pool = [space.arch_hash(a) for a in b.dev_archs(110)]
    assert len(set(pool)) == 110
    assert not set(pool) & reported
    # The shipped pool file holds those architectures, in that order.
    path = b.RESULTS / f"{b.STEM}_dev_pool.jsonl"
    stored = [json.loads(line)["arch_hash"] for line in path.read_text().splitlines()]
    assert len(stored) >= 110
    assert stored == [space.arch_hash(a) for a in b.dev_archs(len(stored))]


def test_rows_of_another_recipe_are_not_reported(predictor_bench: Any, tmp_path: Path) -> None:
    b = predictor_bench
    wanted = b.predictor_recipe()
    assert wanted["predictor_samples"] >= 40
    assert "resolution >= 36" in wanted["features"]
    path = tmp_path / "rows.jsonl"
    b.append_row(path, {"seed": 0, "metrics": {"kendall_tau": 0.9}})  # no recipe: old
    b.append_row(path, {"seed": 1, "recipe": {**wanted, "predictor_samples": 40}})
    b.append_row(path, {"seed": 2, "recipe": wanted, "metrics": {"kendall_tau": 0.6}})
    assert list(b.current_rows(path, wanted)) == [2]


def _supernet_row(label: str, seed: int, accuracy: float) -> dict[str, Any]:
    fixed = {"smallest": accuracy, "middle": accuracy, "largest": accuracy}
    return {
        "kind": "supernet",
        "key": label,
        "seed": seed,
        "result": {"accuracy": fixed, "random_accuracy": [accuracy] * 3},
    }


def test_the_default_is_the_best_equal_budget_schedule(supernet_bench: Any) -> None:
    b = supernet_bench
    runs = b.schedule_runs(3)
    scores = {  # label -> accuracy per seed
        "deps-max-res": [80.0, 90.0, 75.0],
        "deps": [85.0, 60.0, 35.0],
        "progressive-shrinking": [11.0, 17.0, 15.0],
        # A larger budget is a rival, never the choice: its mean is highest here.
        "progressive-shrinking-x3": [95.0, 95.0, 95.0],
    }
    done = {
        f"{label}:{seed}": _supernet_row(label, seed, acc)
        for label, values in scores.items()
        for seed, acc in enumerate(values)
    }
    choice = b.choose(done, runs)
    assert choice["best"] == "deps-max-res"
    leads = choice["leads"]
    assert leads["progressive-shrinking"]["holds"]  # every seed, interval above zero
    assert not leads["deps"]["holds"]  # seed 0 prefers deps
    assert not leads["progressive-shrinking-x3"]["holds"]
    assert not choice["supported"]


def test_supernet_train_defaults_to_the_benchmarks_choice(supernet_bench: Any) -> None:
    b = supernet_bench
    path = b.RESULTS / "supernet_quality_hard.jsonl"
    rows = {r["unit"]: r for r in map(json.loads, path.read_text().splitlines())}
    assert b.choose(rows, b.schedule_runs(3))["best"] == DEFAULT_SCHEDULE
