"""The protocol of benchmarks/search_realistic.py: the tuning path cannot read a
meta-test device, and every method of a task gets the same latency information."""

from __future__ import annotations

import json
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


def test_tasks_are_seed_major(bench: Any) -> None:
    devices = ("fpga", "raspi4")
    ts = bench.tasks("report", ["exact"], devices, ["ours", "tpe"], {"exact": 3})
    assert len(ts) == 3 * len(devices) * len(bench.QUANTILES) * 2
    first_seed = ts[: len(devices) * len(bench.QUANTILES) * 2]
    # A run stopped after one seed's worth of tasks has covered every device,
    # budget and method once.
    assert {t[5] for t in first_seed} == {0}
    assert {(t[2], t[3], t[4]) for t in first_seed} == {
        (d, q, m) for d in devices for q in bench.QUANTILES for m in ("ours", "tpe")
    }
    # A subset of budgets (a costly one in its own process).
    p10 = bench.tasks("report", ["exact"], devices, ["tpe"], {"exact": 3}, (10,))
    assert {t[3] for t in p10} == {10} and len(p10) == 3 * len(devices)


def test_stale_runs_are_left_out_and_rerun(bench: Any, tmp_path: Any) -> None:
    info = bench.latency_info("report", "exact", "fpga")
    assert info is bench.latency_info("report", "exact", "fpga")  # computed once
    fresh_info = bench.LatencyInfo("exact", bench.problem("report", "fpga"))
    assert info.fingerprint == fresh_info.fingerprint
    runs = tmp_path / "runs.jsonl"
    args = ["--mode", "exact", "--devices", "fpga", "--methods", "random", "--seeds", "1"]
    assert bench.main([*args, "--runs", str(runs), "--max-tasks", "1"]) == 0
    row = json.loads(runs.read_text())
    fresh, stale = bench.current(bench.load_rows(runs), "report")
    assert list(fresh) == [bench.task_key(("report", "exact", "fpga", 10, "random", 0))]
    assert not stale
    # The same task run under another latency model: compared with nothing,
    # tabled apart, and run again on resume; the stale row stays as a record.
    old = {**row, "latency_info": "exact:fpga:000000000000"}
    runs.write_text(json.dumps(old) + "\n")
    fresh, stale = bench.current(bench.load_rows(runs), "report")
    assert not fresh and stale == [old]
    bench.main([*args, "--runs", str(runs), "--summary-only"])
    report = (tmp_path / "search_realistic_report.md").read_text()
    fresh_part, _, stale_part = report.partition("1 stale runs")
    assert "| exact | fpga |" not in fresh_part and "| exact | fpga |" in stale_part
    assert bench.main([*args, "--runs", str(runs), "--max-tasks", "1"]) == 0
    lines = runs.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["latency_info"] == info.fingerprint
    fresh, stale = bench.current(bench.load_rows(runs), "report")
    assert list(fresh.values()) == [json.loads(lines[1])] and stale == [old]
    report = (tmp_path / "search_realistic_report.md").read_text()
    fresh_part, _, stale_part = report.partition("1 stale runs")
    assert "| exact | fpga | p10 | random | 1 |" in fresh_part and stale_part


@pytest.mark.slow
def test_optuna_baselines_see_only_the_shared_latency_information(
    bench: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench, "BASELINE_MAX_EVALS", 15)
    p = bench.problem("report", "fpga")
    info = bench.latency_info("report", "realistic", "fpga")
    budget = p.budget(10)
    _, index_of = bench.optuna_space(p)
    assert len(index_of) == len(p.acc)
    for sampler in ("tpe", "nsga2"):
        study, order = bench.optuna_search(p, info, budget, 0, sampler)
        trials = study.get_trials(deepcopy=False)
        assert len(trials) <= bench.PROPOSAL_FACTOR * bench.BASELINE_MAX_EVALS
        cells = [index_of[tuple(t.params[k] for k in p.space.choices())] for t in trials]
        evaluated = []
        for t, i in zip(trials, cells, strict=True):
            # The constraint is the shared model's prediction (the one the loop
            # is given), never the device's true latency.
            assert t.constraints == {"latency": pytest.approx(info.predicted[i] - budget)}
            if info.predicted[i] > budget:
                assert t.value == 0.0  # no evaluation: a placeholder, not the accuracy
            else:
                assert t.value == pytest.approx(p.acc[i])
                if i not in evaluated:
                    evaluated.append(i)
        assert order == evaluated and len(order) == bench.BASELINE_MAX_EVALS
        assert len(trials) > len(order)  # at p10 some proposals were free and infeasible


def test_reachable_gaps_compare_the_feasibility_rules(bench: Any) -> None:
    gaps = bench.reachable_gaps("report", "gold_6226", 0.9)
    assert set(gaps) == set(bench.QUANTILES)
    for point, chance in gaps.values():
        assert 0.0 <= point <= chance  # the upper bound only removes cells
    # At confidence 0.5 the upper bound is the point prediction.
    assert all(a == b for a, b in bench.reachable_gaps("report", "gold_6226", 0.5).values())


def test_realistic_fingerprint_names_the_models_inputs_not_its_rounding(bench: Any) -> None:
    """Runs stay current on another machine (whose float rounding differs) and
    turn stale when what the model is made from changes."""
    import copy

    p = bench.problem("report", "fpga")
    refs = [3, 7, 11]
    digest = bench.realistic_digest(p, refs)
    assert bench.realistic_digest(p, list(refs)) == digest
    other = copy.copy(p)
    other.lat = p.lat.copy()
    other.lat[100] += 1.0  # not a reference: the model does not see it
    assert bench.realistic_digest(other, refs) == digest
    other.lat[7] += 1e-3  # a reference latency: another model
    assert bench.realistic_digest(other, refs) != digest
    assert bench.realistic_digest(p, [3, 7, 12]) != digest
    info = bench.latency_info("report", "realistic", "fpga")
    assert info.fingerprint.startswith("realistic:fpga:")


def test_tuning_variants_of_ours_run_on_train_devices_only(bench: Any) -> None:
    assert set(bench.OURS_VARIANTS) <= set(bench.METHOD_FNS)
    for name in bench.OURS_VARIANTS:  # every variant differs from the defaults
        assert bench.loop_settings(name) != bench.loop_settings("ours")
    with pytest.raises(SystemExit):
        bench.main(["--role", "report", "--methods", "ours@0.6", "--summary-only"])
    # A variant answers on ours' horizon, not the baselines'.
    assert bench._limit("realistic", "ours@0.5") == bench._limit("realistic", "ours")


def test_runs_of_the_loop_are_keyed_by_its_settings(bench: Any) -> None:
    from nas import SearchSettings

    assert bench.loop_fingerprint("random") is None and bench.loop_fingerprint("tpe") is None
    ours = bench.loop_fingerprint("ours")
    assert ours == bench.loop_fingerprint("ours")  # deterministic
    prints = {ours, *(bench.loop_fingerprint(v) for v in bench.OURS_VARIANTS)}
    assert len(prints) == 1 + len(bench.OURS_VARIANTS)
    assert bench.loop_settings("ours") == SearchSettings()
    # Exact mode makes no measurements: the fields that only choose and use
    # them do not key its runs (they do in realistic mode).
    assert bench.loop_fingerprint("ours@best", "exact") == bench.loop_fingerprint("ours", "exact")
    assert bench.loop_fingerprint("ours@best") != ours
    assert bench.loop_fingerprint("ours@v0.2", "exact") == bench.loop_fingerprint("ours", "exact")
    assert bench.loop_fingerprint("ours@0.6", "exact") != bench.loop_fingerprint("ours", "exact")
    # A variant is one confidence for exploring and answering alike.
    v = bench.loop_settings("ours@0.6")
    assert v.confidence(verifying=True) == v.confidence(verifying=False) == 0.6
    info = bench.latency_info("report", "exact", "fpga").fingerprint
    row = {
        "role": "report",
        "mode": "exact",
        "device": "fpga",
        "q": 10,
        "method": "ours",
        "seed": 0,
        "latency_info": info,
        "loop": bench.loop_fingerprint("ours", "exact"),
    }
    before = {k: v for k, v in row.items() if k != "loop"}  # made before the key was kept
    other = {**row, "seed": 1, "loop": "000000000000"}  # made under other settings
    baseline = {**before, "method": "random", "seed": 2}
    fresh, stale = bench.current([row, before, other, baseline], "report")
    assert sorted(r["seed"] for r in fresh.values()) == [0, 2]
    assert stale == [before, other]
    assert bench._info(before).endswith("loop ?") and bench._info(baseline) == info


def _row(bench: Any, method: str, seed: int, reach: int | None, regret: float) -> dict[str, Any]:
    """A synthetic realistic run: reaches the target at checkpoint ``reach``
    (None: never) and ends ``regret`` below the oracle at 100."""
    answers = {
        str(n): {"acc": 90.0 if reach is not None and n >= reach else 80.0, "over": False}
        for n in bench.CHECKPOINTS
    }
    answers["100"]["acc"] = 90.0 - regret
    if reach is None:
        answers = {n: {**a, "acc": min(a["acc"], 89.0)} for n, a in answers.items()}
    return {
        "mode": "realistic",
        "device": "fpga",
        "q": 25,
        "method": method,
        "seed": seed,
        "oracle": 90.0,
        "budget_ms": 2.91,
        "answers": answers,
        "latency_info": "x",
    }


def test_the_overview_and_targets_pair_seeds_and_respect_censoring(bench: Any) -> None:
    rows = [_row(bench, "ours", s, 25, 0.05) for s in range(3)]
    rows += [_row(bench, "random", s, 200, 0.5) for s in range(3)]
    rows += [_row(bench, "tpe", s, None, 1.0) for s in range(2)]  # never reaches it by 400
    table = "\n".join(bench._overview(rows, "realistic"))
    assert "| fpga | p25 = 2.91 ms | 90.00 | 3/3/2/0 | 25 (0.05) | 200 (0.50) |" in table
    assert table.endswith("| 8 | >16 |")  # random 200 / 25; tpe censored at 400
    verdicts = "\n".join(bench._verdicts(rows, "realistic"))
    assert "0 of 3 `ours` searches" in verdicts
    assert "5× fewer evaluations than random: missed at 0; met at 1: fpga p25 (8)" in verdicts
    assert "missed at 0 of 1 pairs" in verdicts
    assert [bench._verdict(r, 5.0) for r in ("6", "4", ">8", ">3", "<3", "<8", "?")] == [
        "met", "missed", "met", "undecided", "missed", "undecided", "undecided",
    ]  # fmt: skip
