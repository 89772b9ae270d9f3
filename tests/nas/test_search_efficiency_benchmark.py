"""Smoke test of benchmarks/search_efficiency.py: every method runs, the summary renders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


@pytest.fixture(scope="module")
def bench(load_benchmark: Callable[[str], ModuleType]) -> Any:
    return load_benchmark("search_efficiency")


@pytest.mark.slow
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
    # A budget where our median run never reached the target has no speed-up ratio.
    censored = [
        dict(r, evals_to_tol=None) if r["method"] == "ours" and r["kind"] == "budget" else r
        for r in rows
    ]
    text = bench.summarise(censored, "pixel3", tmp_path, 1, "test run")
    assert "- p50: none (`ours` did not reach it within 30)" in text
