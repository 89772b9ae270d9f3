"""The online latency correction (nas.correction), and how the search chooses
what to measure: the probability that a measurement finds a fit and the
expected gain (nas.verify)."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from nas import SearchSettings, TabularEvaluator
from nas.constraints import Constraints, confidence_z
from nas.correction import LatencyCorrection
from nas.pareto import best
from nas.records import Evaluation
from nas.verify import (
    best_exploring,
    by_expected_gain,
    closest_exploring,
    expected_best,
    fit_probability,
)

SPACE = TabularEvaluator().space
X = SPACE.encode_many(list(SPACE.all_archs())).astype(np.float64)
# A model 20% too fast everywhere, 10% relative sd.
TRUE = 1.0 + X @ np.linspace(0.1, 1.0, X.shape[1])
PREDICTED = TRUE / 1.2
STD = 0.1 * PREDICTED


def distance(i: int, j: int) -> float:
    """Choices in which two one-hot encoded architectures differ."""
    return float(((X[i] - X[j]) ** 2).sum() / 2)


def test_without_measurements_nothing_changes() -> None:
    fix = LatencyCorrection().fit(X[:0], PREDICTED[:0], STD[:0], TRUE[:0])
    assert not fix.fitted
    lat, std = fix.apply(X, PREDICTED, STD)
    assert np.array_equal(lat, PREDICTED) and np.array_equal(std, STD)


def test_a_shared_error_is_learned_from_a_few_measurements() -> None:
    idx = [3, 500, 7000, 12000, 15000]
    fix = LatencyCorrection(common_share=1.0).fit(X[idx], PREDICTED[idx], STD[idx], TRUE[idx])
    lat, std = fix.apply(X, PREDICTED, STD)
    # Every architecture moves to within 2% of the truth (was 17% off), and the
    # common factor, now known, no longer counts as uncertainty.
    assert np.max(np.abs(lat / TRUE - 1)) < 0.02
    assert np.all(std < 0.2 * STD)


def test_the_local_part_moves_neighbours_more_than_strangers() -> None:
    fix = LatencyCorrection(common_share=0.0, length_scale=0.5)
    fix = fix.fit(X[[0]], PREDICTED[[0]], STD[[0]], TRUE[[0]])
    near = next(j for j in range(1, len(X)) if distance(0, j) == 1)
    far = next(j for j in range(1, len(X)) if distance(0, j) == 6)
    lat, std = fix.apply(X, PREDICTED, STD)
    ratio = lat / PREDICTED
    assert ratio[0] == pytest.approx(1.2, rel=0.02)  # the measured one lands on it
    assert ratio[near] - 1 > 5 * (ratio[far] - 1) > 0
    assert std[near] / lat[near] < STD[near] / PREDICTED[near]  # a neighbour is surer
    assert std[far] / lat[far] == pytest.approx(STD[far] / PREDICTED[far], rel=1e-3)


def test_a_model_without_std_only_moves_the_latency() -> None:
    zero = np.zeros_like(STD)
    fix = LatencyCorrection(common_share=1.0).fit(
        X[[1, 2]], PREDICTED[[1, 2]], zero[[1, 2]], TRUE[[1, 2]]
    )
    lat, std = fix.apply(X, PREDICTED, zero, uncertain=False)
    assert np.all(std == 0) and np.median(lat / PREDICTED) > 1.1


@pytest.mark.parametrize(
    ("kw", "match"),
    [({"common_share": 1.5}, "common_share"), ({"length_scale": 0.0}, "length_scale")],
)
def test_bad_correction_settings_are_refused(kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LatencyCorrection(**kw)
    with pytest.raises(ValueError, match=f"correction_{match}"):
        SearchSettings(**{f"correction_{k}": v for k, v in kw.items()})


def test_measurements_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        LatencyCorrection().fit(X[:1], PREDICTED[:1], STD[:1], np.array([0.0]))


def record(lat: dict[str, float], std: dict[str, float], **kw: Any) -> Evaluation:
    return Evaluation(
        arch=SPACE.from_index(0),
        arch_hash="h",
        accuracy=90.0,
        latency_ms=lat,
        latency_std_ms=std,
        **kw,
    )


def test_fit_probability() -> None:
    c = Constraints({"a": 10.0, "b": 10.0})
    z = confidence_z(0.9)
    # On a device to be measured: normal in the latency.
    assert fit_probability(record({"a": 10.0, "b": 1.0}, {"a": 1.0}), c, {"a"}, z) == 0.5
    p = fit_probability(record({"a": 9.0, "b": 1.0}, {"a": 1.0}), c, {"a"}, z)
    assert p == pytest.approx(0.5 * (1 + math.erf(1 / math.sqrt(2))))
    # A device without a measurement keeps the answer's chance constraint.
    assert fit_probability(record({"a": 9.0, "b": 9.0}, {"b": 1.0}), c, {"a"}, z) == 0.0
    assert fit_probability(record({"a": 9.0, "b": 8.0}, {"b": 1.0}), c, {"a"}, z) == 1.0
    # Measured, or without std: it fits or not.
    measured = record({"a": 10.5, "b": 1.0}, {}, latency_measured={"a": True, "b": False})
    assert fit_probability(measured, c, {"a"}, z) == 0.0
    # Another constraint violated: no chance.
    violated = record({"a": 1.0, "b": 1.0}, {}, violations={"macs": 0.1})
    assert fit_probability(violated, c, {"a"}, z) == 0.0


def test_expected_best() -> None:
    assert expected_best([], [], 90.0) == 90.0
    assert expected_best([92.0], [0.5], 90.0) == 91.0
    # The best that fits: 93 half the time, else 91 (sure).
    assert expected_best([91.0, 93.0], [1.0, 0.5], 90.0) == pytest.approx(92.0)
    assert expected_best([89.0], [1.0], 90.0) == 90.0  # below the floor: worth nothing


def _candidates() -> list[Evaluation]:
    c = Constraints({"a": 10.0})
    out = []
    for i, (acc, lat) in enumerate([(91.0, 5.0), (93.0, 10.0), (95.0, 30.0), (89.0, 1.0)]):
        e = record({"a": lat}, {"a": 1.0}, latency_measured={"a": False})
        out.append(replace(e, arch_hash=f"h{i}", accuracy=acc))
    assert fit_probability(out[2], c, {"a"}, 1.28) < 1e-9  # 20 sd over: no chance
    return out


def test_the_next_measurement_has_the_largest_expected_gain() -> None:
    c = Constraints({"a": 10.0})
    pool = _candidates()
    # Over 90: the sure 91 gains 1, the coin flip at 93 gains 1.5.
    assert [e.arch_hash for e in by_expected_gain(pool, c, {"a"}, 1.28, 90.0, 1)] == ["h1"]
    # Over 92.5 only the coin flip can gain; over 93 nothing can: no measurement.
    assert [e.arch_hash for e in by_expected_gain(pool, c, {"a"}, 1.28, 92.5, 1)] == ["h1"]
    assert by_expected_gain(pool, c, {"a"}, 1.28, 93.0, 1) == []
    # A batch adds the sure one behind the coin flip, never the hopeless one.
    batch = by_expected_gain(pool, c, {"a"}, 1.28, 90.0, 4)
    assert [e.arch_hash for e in batch] == ["h1", "h0"]


def test_best_and_closest_at_an_optimistic_exploring_confidence() -> None:
    c = Constraints({"a": 10.0})
    pool = _candidates()  # h0 5 ms, h1 10 ms (std 1), h2 30 ms, h3 1 ms
    with pytest.raises(ValueError, match=r"\[0\.5, 1\)"):
        best(pool, c, device="a", feasibility_confidence=0.3)  # nas.pareto refuses it
    # At 0.3 the bound is 10 - 0.52 ms: h1 counts as fitting, and is the best.
    assert best_exploring(pool, c, 0.3, device="a") is pool[1]
    assert best_exploring(pool, c, 0.9, device="a") is pool[0]  # as nas.pareto at 0.9
    # The originals come back (not the folded copies), nearest first.
    tight = Constraints({"a": 0.5})
    near = closest_exploring(pool, tight, 2, 0.3, device="a")
    assert [e.arch_hash for e in near] == ["h3", "h0"] and near[0] is pool[3]
