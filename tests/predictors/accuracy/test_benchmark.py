"""Smoke test of benchmarks/accuracy_predictor.py (tiny settings, temporary output)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_benchmark_runs_and_writes_results(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "accuracy_predictor_bench", ROOT / "benchmarks" / "accuracy_predictor.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
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
