"""Pareto fronts, hypervolume and best-under-budget queries on records."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pytest

from nas import (
    Constraints,
    Evaluation,
    Proposal,
    best,
    best_under_budget,
    closest,
    confidence_z,
    effective_latency,
    hypervolume_2d,
    hypervolume_improvement,
    pareto_front,
    violation,
)

if TYPE_CHECKING:
    from supernets import Arch


def rec(acc: float, lat: float, **kw: object) -> dict[str, Any]:
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
        Evaluation(arch=cast("Arch", None), arch_hash=str(i), accuracy=a, latency_ms={"cpu": lat})
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
    assert (
        cast(dict[str, Any], answer.best)["accuracy"] == 92
        and answer.source == "measured"
        and answer.feasible
    )
    assert answer.labels == {"accuracy": "measured", "latency_ms": "predicted"}
    measured = [rec(90, 10, latency_measured={"cpu": True})]
    assert best_under_budget(measured, "cpu", 22).labels["latency_ms"] == "measured"


def test_best_under_budget_with_cost_limits() -> None:
    records = [rec(92, 10, macs=5e6, params=1e5), rec(90, 10, macs=1e6, params=1e5)]
    limited = cast(dict[str, Any] | None, best_under_budget(records, "cpu", 20, max_macs=2e6).best)
    assert limited is not None and limited["accuracy"] == 90
    # A record without MACs cannot be shown to meet a MACs limit.
    assert not best_under_budget([rec(92, 10)], "cpu", 20, max_macs=2e6).feasible


def test_nothing_feasible_gives_closest_marked_infeasible() -> None:
    answer = best_under_budget(RECORDS, "cpu", 1.0, n_closest=2)
    assert answer.best is None and not answer.feasible and answer.source is None
    closest_rows = cast(list[dict[str, Any]], answer.closest)
    assert [r["latency_ms"]["cpu"] for r in closest_rows] == [5, 6]
    assert "closest" in answer.message


def test_predicted_fallback_is_labelled_predicted() -> None:
    proposal = Proposal(
        arch=cast("Arch", None),
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


# -- the reference rules (nas.pareto's module docstring) ----------------------------------


def test_best_breaks_ties_by_latency_then_input_order() -> None:
    rows = [rec(91, 8, id=0), rec(92, 9, id=1), rec(92, 7, id=2), rec(92, 7, id=3)]
    found = best(rows, Constraints({"cpu": 10}))
    assert found is not None and found["id"] == 2  # equal accuracy: faster, then earlier
    # The tie-break device is the first one with a budget unless named.
    two = [
        {"accuracy": 92, "latency_ms": {"cpu": 5, "gpu": 2}, "id": 0},
        {"accuracy": 92, "latency_ms": {"cpu": 4, "gpu": 3}, "id": 1},
    ]
    both = Constraints({"cpu": 10, "gpu": 10})
    assert best(two, both)["id"] == 1  # type: ignore[index]
    assert best(two, both, device="gpu")["id"] == 0  # type: ignore[index]
    assert best([rec(90, 11)], Constraints({"cpu": 10})) is None


def test_closest_ranks_by_violation_then_accuracy_then_latency() -> None:
    rows = [
        rec(80, 12, id=0),
        rec(85, 12, id=1),  # same violation as 0, more accurate
        rec(99, 30, id=2),
        {"accuracy": 99, "latency_ms": {}, "id": 3},  # no latency: never closest
    ]
    near = closest(rows, Constraints({"cpu": 10}), 5)
    assert [r["id"] for r in near] == [1, 0, 2]
    assert closest(rows, Constraints({"cpu": 10}), 0) == []
    with pytest.raises(ValueError, match="n must be"):
        closest(rows, Constraints({"cpu": 10}), -1)


def test_a_nan_accuracy_is_never_an_answer() -> None:
    # Bug: best_under_budget used max() with NaN keys, so a NaN row listed
    # first was returned as the best architecture.
    rows = [rec(float("nan"), 5), rec(90, 5)]
    answer = best_under_budget(rows, "cpu", 10)
    assert answer.best is not None and cast(dict[str, Any], answer.best)["accuracy"] == 90
    assert pareto_front(rows, "cpu") == [rows[1]]
    bad_latency = [rec(99, float("nan")), rec(80, 20)]
    assert best_under_budget(bad_latency, "cpu", 10).closest == [bad_latency[1]]


def test_predicted_latency_with_std_is_checked_at_its_upper_bound() -> None:
    z = confidence_z(0.9)
    assert z == pytest.approx(1.2815515655446004)
    assert confidence_z(0.5) == 0.0
    for bad in (0.3, 1.0, float("nan")):
        with pytest.raises(ValueError, match="feasibility_confidence"):
            confidence_z(bad)
    row = {"accuracy": 90, "latency_ms": {"cpu": 9.0}, "latency_std_ms": {"cpu": 1.0}}
    assert effective_latency(row, "cpu") == pytest.approx(9.0 + z)
    c = Constraints({"cpu": 10})
    assert violation(row, c) > 0 and best([row], c) is None  # P(<= 10 ms) < 0.9
    assert best([row], c, feasibility_confidence=0.5) is row  # the mean fits
    measured = {**row, "latency_measured": {"cpu": True}}  # a measurement has no std
    assert best([measured], c) is measured
    assert best_under_budget([row], "cpu", 10, feasibility_confidence=0.5).best is row
    assert not best_under_budget([row], "cpu", 10).feasible
    nan_std = {**row, "latency_std_ms": {"cpu": float("nan")}}
    assert violation(nan_std, c) == float("inf")


def test_rows_with_a_bad_shape_are_named() -> None:
    with pytest.raises(ValueError, match=r"latency_ms.*mapping"):
        best([{"accuracy": 90, "latency_ms": 5.0}], Constraints({"cpu": 10}))


def test_random_rows_agree_with_a_brute_force_reading_of_the_rules() -> None:
    """The rules as one sort each (what an SQL implementation does), on random rows."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(0, 12))
        rows: list[dict[str, Any]] = [
            {
                "accuracy": float(rng.choice([80, 85, 90, np.nan])),
                "latency_ms": {"cpu": float(rng.choice([4, 8, 12]))},
                "macs": float(rng.choice([1, 3])),
                "id": i,
            }
            for i in range(n)
        ]
        c = Constraints({"cpu": 10}, max_macs=2)
        ok = [r for r in rows if np.isfinite(r["accuracy"])]
        feas = [r for r in ok if r["latency_ms"]["cpu"] <= 10 and r["macs"] <= 2]
        want = min(
            feas, key=lambda r: (-r["accuracy"], r["latency_ms"]["cpu"], r["id"]), default=None
        )
        assert best(rows, c) == want

        def v(r: dict[str, Any]) -> float:
            return max(0, r["latency_ms"]["cpu"] / 10 - 1) + max(0, r["macs"] / 2 - 1)

        order = sorted(ok, key=lambda r: (v(r), -r["accuracy"], r["latency_ms"]["cpu"], r["id"]))
        assert closest(rows, c, 3) == order[:3]
