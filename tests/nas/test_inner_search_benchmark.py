"""Smoke test of benchmarks/inner_search.py: every strategy runs, the summary renders."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest


@pytest.mark.slow
def test_strategies_run_and_results_are_written(
    tmp_path: Path, load_benchmark: Callable[[str], ModuleType]
) -> None:
    bench = load_benchmark("inner_search")
    bench.main(["--repeats", "1", "--spaces", "nb201", "--out", str(tmp_path)])
    results = json.loads((tmp_path / "inner_search.json").read_text())
    assert [r["strategy"] for r in results] == ["exhaustive", "evolution", "optuna"]
    problem = bench.nb201_problem(0)
    measured = {problem.space.arch_hash(a) for a in problem.seeds}
    for r in results:
        assert r["rows_predicted"] > 0 and r["rows_per_s"] > 0
        assert 0 < r["pool"] <= 15_625 - len(measured)
    # The exhaustive round predicts exactly the unmeasured predicted-feasible cells.
    feasible = problem.latency.values <= problem.budget_ms
    assert results[0]["pool"] == results[0]["rows_predicted"]
    assert results[0]["pool"] <= int(feasible.sum())
    md = (tmp_path / "inner_search.md").read_text()
    assert "| nb201 | evolution |" in md and "rows / s" in md


def test_unknown_space_is_refused(
    tmp_path: Path, load_benchmark: Callable[[str], ModuleType]
) -> None:
    bench = load_benchmark("inner_search")
    with pytest.raises(SystemExit):
        bench.main(["--spaces", "nope", "--out", str(tmp_path)])
