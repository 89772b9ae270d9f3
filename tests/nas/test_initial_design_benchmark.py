"""Smoke test of benchmarks/initial_design.py at the smallest size."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest


@pytest.mark.slow
def test_initial_design_benchmark_writes_its_table(
    tmp_path: Path, load_benchmark: Callable[[str], ModuleType]
) -> None:
    bench = load_benchmark("initial_design")
    bench.main(["--devices", "fpga", "--seeds", "2", "--n", "20", "--out", str(tmp_path)])
    rows = json.loads((tmp_path / "initial_design.json").read_text())
    assert len(rows) == 3 * 2 * 2  # budgets x designs x seeds
    assert {r["design"] for r in rows} == {"space", "feasible"}
    assert all(r["rank"] is None or 1 <= r["rank"] <= bench.TOP for r in rows)
    table = (tmp_path / "initial_design.md").read_text()
    assert table.count("| fpga | p") == 3
