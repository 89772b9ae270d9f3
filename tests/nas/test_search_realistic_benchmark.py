"""The protocol of benchmarks/search_realistic.py: the tuning path cannot read a
meta-test device, and every method of a task gets the same latency information."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest


@pytest.fixture(scope="module")
def bench(load_benchmark: Callable[[str], ModuleType]) -> Any:
    return load_benchmark("search_realistic")


def test_tuning_cannot_read_a_meta_test_device(bench: Any) -> None:
    meta_test = set(bench.META_TEST)
    assert meta_test == {"titan_rtx_256", "gold_6226", "fpga", "pixel2", "raspi4", "eyeriss"}
    assert not set(bench.role_devices("tune")) & meta_test
    assert not set(bench.readable_table("tune")) & meta_test
    assert set(bench.role_devices("report")) == meta_test
    for device in meta_test:
        with pytest.raises(ValueError, match="may not run"):
            bench.Problem("tune", device)
    with pytest.raises(ValueError, match="may not run"):
        bench.Problem("report", "pixel3")  # a train device is not reported on
    # Realistic mode's latency meta-model: tuning leaves the tuned device out, and
    # no meta-model ever sees a meta-test device.
    for device in bench.role_devices("tune"):
        sources = set(bench.meta_source_devices("tune", device))
        assert device not in sources and not sources & meta_test
    assert not set(bench.meta_source_devices("report", "fpga")) & meta_test
    with pytest.raises(SystemExit):
        bench.main(["--role", "tune", "--devices", "fpga", "--summary-only"])


@pytest.mark.slow
def test_every_method_gets_the_same_latency_information(
    bench: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setattr(bench, "CHECKPOINTS", (10, 20))
    monkeypatch.setattr(bench, "OURS_MAX_EVALS", 20)
    monkeypatch.setattr(bench, "OURS_EXACT_EVALS", 20)
    monkeypatch.setattr(bench, "BASELINE_MAX_EVALS", 20)
    measurers: list[Any] = []
    original = bench.LatencyInfo.measurer

    def tracked(self: Any) -> Any:
        m = original(self)
        measurers.append(m)
        return m

    monkeypatch.setattr(bench.LatencyInfo, "measurer", tracked)
    for mode in ("exact", "realistic"):
        rows = [bench.run_task("report", mode, "fpga", 50, m, 0) for m in bench.METHODS]
        assert len({r["latency_info"] for r in rows}) == 1  # one model for all methods
        for r in rows:
            for a in r["answers"].values():
                assert a is None or not a["over"]  # verified answers only
    assert measurers and all(len(m.measured) <= bench.MEASURE_CAP for m in measurers)
    # Exact mode measures nothing: its latency is the table itself.
    info = bench.LatencyInfo("exact", bench.problem("report", "fpga"))
    assert info.cap == 0
    # Runs are cached and summarised; a second invocation runs nothing new.
    runs = tmp_path / "runs.jsonl"
    args = ["--mode", "exact", "--devices", "fpga", "--methods", "random", "--seeds", "1"]
    assert bench.main([*args, "--runs", str(runs), "--max-tasks", "2"]) == 0
    assert len(runs.read_text().splitlines()) == 2
    assert bench.main([*args, "--runs", str(runs), "--shard", "1/2"]) == 0
    lines = runs.read_text().splitlines()
    assert len(lines) == 3  # tasks 1 and 3 of 4: task 1 was already done
    assert "| exact | fpga |" in (tmp_path / "search_realistic_report.md").read_text()
