"""Smoke test of benchmarks/accuracy_predictor.py (tiny settings, temporary output)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType


def test_benchmark_runs_and_writes_results(
    tmp_path: Path, load_benchmark: Callable[[str], ModuleType]
) -> None:
    bench = load_benchmark("accuracy_predictor")
    result = bench.main(
        ["--ns", "50", "--seeds", "1", "--methods", "xgb-default", "hwnas", "--out", str(tmp_path)]
    )
    assert {r["method"] for r in result["predictors"]} == {"xgb-default", "hwnas"}
    assert {"kendall_tau", "kendall_tau_above80", "fit_predict_s"} <= set(result["predictors"][0])
    assert [r["confidence"] for r in result["pruning"]] == [0.0, 2.0, 3.0]
    saved = json.loads((tmp_path / "accuracy_predictor.json").read_text())
    assert saved["meta"]["n_heldout"] == 5000
    md = (tmp_path / "accuracy_predictor.md").read_text()
    assert "| hwnas |" in md and "Search-space pruning" in md
