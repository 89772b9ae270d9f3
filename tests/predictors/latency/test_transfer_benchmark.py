"""The transfer benchmark's honest protocol: committed tasks, and a tuning path
that reads no device but the task's sources."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from predictors.latency import shared_cost_groups
from predictors.latency.pretrained import meta_training_data
from supernets import tables


def test_committed_tasks_are_what_the_script_builds(
    load_benchmark: Callable[[str], ModuleType],
) -> None:
    splits = load_benchmark("family_splits")
    assert splits.main(["--check"]) == 0
    data = json.loads(splits.OUT.read_text())
    family = [t for t in data["tasks"] if t["kind"] == "family"]
    assert len(family) >= 5
    members = {f: set(v["devices"]) for f, v in data["families"].items()}
    assert set().union(*members.values()) == set(tables.nb201_latency().latency)
    for t in data["tasks"]:
        assert not set(t["train"]) & set(t["test"]), t["name"]
    for t in family:
        assert set(t["train"]) == set().union(*(members[f] for f in t["train_families"]))
        assert not set(t["train_families"]) & set(t["test_families"])
    assert {"HELP", "GPUs->this CPU"} <= {t["name"] for t in data["tasks"]}


@pytest.mark.parametrize("name", ["F1->F3+F4", "HELP"])
def test_tuning_reads_only_source_devices(
    load_benchmark: Callable[[str], ModuleType], name: str
) -> None:
    bench = load_benchmark("latency_transfer")
    task = next(t for t in bench.load_tasks() if t["name"] == name)
    space, _, X, _ = meta_training_data("nb201", "train")
    log = bench.ReadLog(tables.nb201_latency().latency)
    meta = bench.fit_on_sources(task, X, log, 200, 0, groups=shared_cost_groups(space))
    # fails the moment any setting is tuned on (or any latency read from) a meta-test device
    assert log.read == set(task["train"])
    assert not log.read & set(task["test"])
    assert set(meta.source_devices) == set(task["train"])
    assert meta.info["n_archs"] == 200


@pytest.mark.slow
def test_benchmark_runs_one_task(
    tmp_path: Path, load_benchmark: Callable[[str], ModuleType]
) -> None:
    bench = load_benchmark("latency_transfer")
    assert (
        bench.main(["--tasks", "HELP", "--seeds", "1", "--no-speed", "--out", str(tmp_path)]) == 0
    )
    rows = [
        json.loads(x) for x in (tmp_path / "latency_transfer_rows.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 1 and set(rows[0]["devices_read"]) == set(tables.nb201_split().train)
    ours = [r for r in rows[0]["rows"] if r["method"] == "ours" and r["k"] == 10]
    assert len(ours) == 6 and np.mean([r["rho"] for r in ours]) > 0.9
    assert all(0.0 <= r["cover"] <= 1.0 for r in ours)
    md = (tmp_path / "latency_transfer.md").read_text()
    assert "| HELP | 9 → 6 |" in md and "HELP's NB201 split" in md
