"""Predictor quality metrics."""

from __future__ import annotations

import numpy as np
import pytest

from predictors.metrics import (
    kendall_tau,
    quality_report,
    rmse,
    spearman_rho,
    top_k_precision,
    within_tolerance,
)


def test_rank_correlations_perfect_and_reversed() -> None:
    y = np.arange(10.0)
    assert kendall_tau(y, y * 2 + 1) == pytest.approx(1.0)
    assert spearman_rho(y, -y) == pytest.approx(-1.0)
    assert kendall_tau(y, np.ones(10)) == 0.0  # constant prediction carries no ranking


def test_constant_input_is_zero_without_warning() -> None:
    import warnings

    y = np.arange(10.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy's ConstantInputWarning would fail here
        assert spearman_rho(y, np.ones(10)) == 0.0
        assert kendall_tau(np.ones(10), y) == 0.0


def test_rmse_and_tolerance() -> None:
    assert rmse([1, 2, 3], [1, 2, 5]) == pytest.approx(np.sqrt(4 / 3))
    assert within_tolerance([10, 10, 10, 10], [10.5, 11.5, 9.2, 10]) == pytest.approx(0.75)


def test_top_k_precision_both_directions() -> None:
    t = np.array([5.0, 4, 3, 2, 1])
    p = np.array([5.0, 1, 3, 2, 4])
    assert top_k_precision(t, p, 2) == pytest.approx(0.5)
    assert top_k_precision(t, p, 2, higher_is_better=False) == pytest.approx(0.5)
    assert top_k_precision(t, t, 3) == 1.0


def test_report_keys() -> None:
    report = quality_report(np.arange(20.0), np.arange(20.0) ** 2, top_k=5)
    assert set(report) == {"n", "kendall_tau", "spearman_rho", "rmse", "top5_precision"}
    assert report["kendall_tau"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("t", "p", "msg"),
    [([1, 2], [1], "same length"), ([1], [1], "at least 2"), ([1, np.nan], [1, 2], "finite")],
)
def test_bad_input(t: list, p: list, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        spearman_rho(t, p)
