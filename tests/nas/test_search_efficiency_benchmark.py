"""Smoke test of benchmarks/search_efficiency.py: every method runs, the summary renders."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench() -> Any:
    spec = importlib.util.spec_from_file_location(
        "search_efficiency", ROOT / "benchmarks" / "search_efficiency.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["search_efficiency"] = module
    spec.loader.exec_module(module)
    return module


def test_methods_run_and_summary_renders(
    bench: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(bench, "CAPS", {m: 30 for m in bench.CAPS})
    monkeypatch.setattr(bench, "CURVE_EVALS", 30)
    monkeypatch.setattr(bench, "HV_EVALS", 30)
    rows = [bench.run_task("budget", "pixel3", 50, m, 0) for m in bench.METHODS]
    rows += [bench.run_task("pareto", "pixel3", None, m, 0) for m in ("random", "tpe")]
    for r in rows:
        assert r["n_evaluated"] > 0
    by = {r["method"]: r for r in rows if r["kind"] == "budget"}
    assert by["random"]["evals_to_oracle"] is not None  # random is exact: a full permutation
    assert by["ours"]["n_evaluated"] == 30
    assert all(0.0 <= h <= 1.0 for r in rows if r["kind"] == "pareto" for h in r["hv"])
    text = bench.summarise(rows, "pixel3", tmp_path, 1, "test run")
    assert "evals to oracle" in text and "Hypervolume" in text
    assert (tmp_path / "search_efficiency.png").exists()
