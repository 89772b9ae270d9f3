"""Pareto fronts, hypervolume and best-under-budget queries on records."""

from __future__ import annotations

import numpy as np
import pytest

from nas import (
    Constraints,
    Evaluation,
    Proposal,
    best_under_budget,
    hypervolume_2d,
    hypervolume_improvement,
    pareto_front,
)


def rec(acc: float, lat: float, **kw: object) -> dict[str, object]:
    return {"accuracy": acc, "latency_ms": {"cpu": lat}, **kw}


RECORDS = [rec(90, 10), rec(92, 20), rec(91, 25), rec(85, 5), rec(93, 40), rec(80, 6)]


def test_pareto_front_is_non_dominated_and_sorted_by_latency() -> None:
    front = pareto_front(RECORDS, "cpu")
    assert [(r["accuracy"], r["latency_ms"]["cpu"]) for r in front] == [
        (85, 5),
        (90, 10),
        (92, 20),
        (93, 40),
    ]
    feasible = pareto_front(RECORDS, "cpu", constraints=Constraints({"cpu": 30}))
    assert [r["accuracy"] for r in feasible] == [85, 90, 92]
    assert pareto_front(RECORDS, "gpu") == []  # no latency on that device


def test_pareto_front_accepts_evaluation_objects() -> None:
    evals = [
        Evaluation(arch=None, arch_hash=str(i), accuracy=a, latency_ms={"cpu": lat})
        for i, (a, lat) in enumerate([(90, 10), (80, 20)])
    ]
    assert pareto_front(evals, "cpu") == [evals[0]]


def test_hypervolume_by_hand() -> None:
    # Points (latency, accuracy) = (1, 3), (2, 4); reference (4, 0):
    # area = (4-1)*3 + (4-2)*(4-3) = 11.
    assert hypervolume_2d([1, 2], [3, 4], (4, 0)) == pytest.approx(11.0)
    assert hypervolume_2d([5], [10], (4, 0)) == 0.0  # outside the box
    assert hypervolume_2d([], [], (4, 0)) == 0.0


def test_hypervolume_improvement_is_the_hypervolume_difference() -> None:
    rng = np.random.default_rng(0)
    ref = (10.0, 0.0)
    f_lat, f_acc = rng.uniform(0, 10, 8), rng.uniform(0, 5, 8)
    c_lat, c_acc = rng.uniform(0, 12, 200), rng.uniform(-1, 6, 200)
    gain = hypervolume_improvement(f_lat, f_acc, c_lat, c_acc, ref)
    base = hypervolume_2d(f_lat, f_acc, ref)
    expected = [
        hypervolume_2d(np.append(f_lat, lt), np.append(f_acc, ac), ref) - base
        for lt, ac in zip(c_lat, c_acc, strict=True)
    ]
    assert gain == pytest.approx(expected, abs=1e-9)


def test_best_under_budget_from_real_evaluations() -> None:
    answer = best_under_budget(RECORDS, "cpu", 22)
    assert answer.best is not None
    assert answer.best["accuracy"] == 92 and answer.source == "measured" and answer.feasible
    assert answer.labels == {"accuracy": "measured", "latency_ms": "predicted"}
    measured = [rec(90, 10, latency_measured={"cpu": True})]
    assert best_under_budget(measured, "cpu", 22).labels["latency_ms"] == "measured"


def test_best_under_budget_with_cost_limits() -> None:
    records = [rec(92, 10, macs=5e6, params=1e5), rec(90, 10, macs=1e6, params=1e5)]
    limited = best_under_budget(records, "cpu", 20, max_macs=2e6).best
    assert limited is not None and limited["accuracy"] == 90
    # A record without MACs cannot be shown to meet a MACs limit.
    assert not best_under_budget([rec(92, 10)], "cpu", 20, max_macs=2e6).feasible


def test_nothing_feasible_gives_closest_marked_infeasible() -> None:
    answer = best_under_budget(RECORDS, "cpu", 1.0, n_closest=2)
    assert answer.best is None and not answer.feasible and answer.source is None
    assert [r["latency_ms"]["cpu"] for r in answer.closest] == [5, 6]
    assert "closest" in answer.message


def test_predicted_fallback_is_labelled_predicted() -> None:
    proposal = Proposal(
        arch=None,
        arch_hash="x",
        predicted_accuracy=88.0,
        predicted_std=1.0,
        latency_ms={"cpu": 0.5},
        violations={},
    )
    answer = best_under_budget(RECORDS, "cpu", 1.0, proposals=[proposal])
    assert answer.best is proposal and answer.source == "predicted"
    assert answer.labels == {"accuracy": "predicted", "latency_ms": "predicted"}
    assert "predicted" in answer.message
    # Real evaluations win whenever one is feasible.
    assert best_under_budget(RECORDS, "cpu", 22, proposals=[proposal]).source == "measured"
