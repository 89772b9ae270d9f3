"""Constraints (relative violations) and the batch latency adapter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from nas import BatchLatency, Constraints
from supernets import get_space


def test_violations_are_relative_and_zero_when_met() -> None:
    c = Constraints({"cpu": 10.0}, max_macs=1e6)
    v = c.violations({"cpu": np.array([5.0, 15.0])}, macs=np.array([2e6, 1e6]))
    assert v["latency_ms:cpu"].tolist() == [0.0, 0.5]
    assert v["macs"].tolist() == [1.0, 0.0]
    assert c.total_violation({"cpu": np.array([5.0, 15.0])}, np.array([2e6, 1e6])).tolist() == [
        1.0,
        0.5,
    ]
    assert Constraints().total_violation({"cpu": np.array([1.0, 2.0])}).tolist() == [0.0, 0.0]
    assert "latency on cpu <= 10 ms" in c.describe()


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_bounds_must_be_positive(bad: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        Constraints({"cpu": bad})


def test_missing_value_for_a_constraint_is_an_error() -> None:
    with pytest.raises(ValueError, match="needs a value"):
        Constraints(max_params=1.0).violations({})


def test_batch_latency_paths_agree() -> None:
    space = get_space("nb201")
    archs = [space.sample(np.random.default_rng(s)) for s in range(5)]
    w = np.arange(space.feature_dim, dtype=float)

    def per_arch(arch: object) -> float:
        return float(space.encode(arch) @ w)

    class Model:  # e.g. an adapted MetaLatencyPredictor device model
        def predict(self, X: np.ndarray) -> np.ndarray:
            return X @ w

    class Table:
        measured = True

        def predict_archs(self, batch: Sequence[Any]) -> np.ndarray:
            return np.array([per_arch(a) for a in batch])

    results = [BatchLatency(src, space, "d") for src in (per_arch, Model(), Table())]
    expected = [per_arch(a) for a in archs]
    for lat in results:
        assert lat.predict_archs(archs).tolist() == pytest.approx(expected)
        assert lat(archs[0]) == pytest.approx(expected[0])
    assert [lat.measured for lat in results] == [False, False, True]
    assert results[0].predict_archs([]).shape == (0,)


def test_batch_latency_rejects_bad_models() -> None:
    space = get_space("nb201")
    with pytest.raises(TypeError, match="callable"):
        BatchLatency(42, space, "d")  # type: ignore[arg-type]

    class Short:
        def predict(self, X: np.ndarray) -> np.ndarray:
            return np.zeros(1)

    archs = [space.sample(np.random.default_rng(s)) for s in range(3)]
    with pytest.raises(ValueError, match="returned 1 values"):
        BatchLatency(Short(), space, "d").predict_archs(archs)
    with pytest.raises(ValueError, match="NaN"):
        BatchLatency(lambda a: float("nan"), space, "d").predict_archs(archs)
