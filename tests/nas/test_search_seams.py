"""The search's seams: answers from nas.pareto, the JSON summary, the Constraints
value, the stop rules, and failing a study's orphaned trials."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

from nas import (
    Constraints,
    Search,
    SearchSettings,
    SearchStudy,
    StopRules,
    TabularEvaluator,
    best,
    closest,
    fail_running_trials,
    run_search,
)
from nas.latency import latency_models
from nas.loop import drive

optuna.logging.set_verbosity(optuna.logging.WARNING)

EV = TabularEvaluator()
SPACE = EV.space
LAT = EV.latency("pixel3")
BUDGET = float(np.percentile(LAT.values, 25))
FAST = SearchSettings(batch_size=5, n_initial=5)


def small_predictor(seed: int) -> Any:
    from predictors.accuracy import GBDTAccuracyPredictor

    return GBDTAccuracyPredictor(seed=seed, n_models=2, params={"n_rounds": 30})


def test_the_result_answers_with_the_reference_rules() -> None:
    result = run_search(
        SPACE, EV, LAT, BUDGET, 15, seed=0, settings=FAST, predictor_factory=small_predictor
    )
    assert result.best_evaluation is best(result.evaluations, result.constraints)
    infeasible = run_search(SPACE, EV, LAT, LAT.values.min() / 2, 8, seed=0, settings=FAST)
    assert infeasible.best is None
    assert infeasible.closest == closest(infeasible.evaluations, infeasible.constraints, 3)
    # The same answer from plain rows (what the service holds).
    rows = [e.to_dict() for e in result.evaluations]
    row = best(rows, result.constraints)
    assert row is not None and row["arch_hash"] == result.best_evaluation.arch_hash  # type: ignore[union-attr]


def test_to_dict_is_the_json_summary() -> None:
    result = run_search(
        SPACE, EV, LAT, BUDGET, 12, seed=1, settings=FAST, predictor_factory=small_predictor
    )
    out = result.to_dict()
    json.dumps(out, allow_nan=False)
    assert out["device"] == "pixel3" and out["budget_ms"] == BUDGET
    assert out["n_evaluations"] == 12 and out["n_new"] == 12 and out["feasible"] is True
    assert out["stop_reason"] == "n_evaluations"
    b = result.best_evaluation
    assert b is not None
    assert out["best"]["arch_hash"] == b.arch_hash and out["best"]["accuracy"] == b.accuracy
    assert out["best"]["latency_source"] == {"pixel3": "measured"}  # the table is measured
    assert out["best"]["accuracy_source"] == "measured"
    assert f"{b.accuracy:.2f}" in out["message"] and "pixel3" in out["message"]
    assert out["proposals"] == [p.to_dict() for p in result.proposals]
    assert out["n_latency_measurements"] == 0 and out["best_latency_measured"] is True
    # Non-finite numbers become None; an unknown device is named.
    odd = replace(result, best_evaluation=replace(b, macs=math.nan), closest=[])
    assert odd.to_dict()["best"]["macs"] is None
    with pytest.raises(ValueError, match="gpu"):
        result.to_dict("gpu")


def test_constraints_value_or_loose_arguments() -> None:
    kw: dict[str, Any] = {"settings": FAST, "predictor_factory": small_predictor}
    loose = run_search(SPACE, EV, LAT, BUDGET, 10, seed=2, **kw)
    value = run_search(
        SPACE, EV, LAT, None, 10, seed=2, constraints=Constraints({"pixel3": BUDGET}), **kw
    )
    assert [str(a) for a, _, _ in loose.history] == [str(a) for a, _, _ in value.history]
    assert loose.constraints == value.constraints
    with pytest.raises(ValueError, match="either constraints"):
        run_search(SPACE, EV, LAT, BUDGET, 10, constraints=Constraints({"pixel3": BUDGET}))


def test_stop_rules_are_validated_and_drive_a_search() -> None:
    for bad, match in (
        ({"n_evaluations": -1}, "n_evaluations"),
        ({"n_evaluations": 1, "time_budget_s": -1.0}, "time_budget_s"),
        ({"n_evaluations": 1, "patience": 0}, "patience"),
        ({"n_evaluations": 1, "infeasible_rounds": 0}, "infeasible_rounds"),
    ):
        with pytest.raises(ValueError, match=match):
            StopRules(**bad)
    # The driver over a Search built by hand: what run_search does.
    search = Search(
        SPACE, EV, latency_models(LAT, SPACE), Constraints({"pixel3": BUDGET}), settings=FAST
    )
    result = drive(search, StopRules(7))
    assert len(result.evaluations) == 7 and result.stop_reason == "n_evaluations"
    stopped = drive(
        Search(
            SPACE, EV, latency_models(LAT, SPACE), Constraints({"pixel3": BUDGET}), settings=FAST
        ),
        StopRules(7, should_stop=lambda: True),
    )
    assert stopped.stop_reason == "stopped" and stopped.evaluations == []


def test_fail_running_trials_of_a_study(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    assert fail_running_trials(url, "nope") == 0  # no such study
    study = SearchStudy(SPACE, ["pixel3"], storage=url, study_name="s")
    orphan = SPACE.from_index(7)
    study.start(orphan, {"arch_hash": SPACE.arch_hash(orphan)})  # a worker died here
    assert fail_running_trials(url, "s") == 1
    trials = optuna.load_study(study_name="s", storage=url).get_trials()
    assert [t.state.name for t in trials] == ["FAIL"]
    assert fail_running_trials(url, "s") == 0
    # The resumed search neither waits for it nor evaluates it.
    calls: list[str] = []

    def evaluate(arch: Any) -> float:
        calls.append(SPACE.arch_hash(arch))
        return EV(arch)

    run_search(SPACE, evaluate, LAT, BUDGET, 6, storage=url, study_name="s", settings=FAST)
    assert len(calls) == 6 and SPACE.arch_hash(orphan) not in calls
