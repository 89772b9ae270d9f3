"""Sampling a measured dataset, fitting with a quality report, Optuna tuning."""

from __future__ import annotations

import numpy as np
import pytest

from predictors.accuracy import (
    GBDTParams,
    fit_with_report,
    sample_dataset,
    tune_params,
)
from supernets import get_space
from supernets.tables import nb201_accuracy


def test_sample_dataset_distinct_and_measured() -> None:
    space = get_space("nb201")
    acc = nb201_accuracy()
    stored: list[tuple[str, float]] = []
    data = sample_dataset(
        space,
        40,
        lambda arch: acc[str(arch)],
        np.random.default_rng(0),
        on_measured=lambda arch, a: stored.append((str(arch), a)),
    )
    assert len(data) == 40 and data.X.shape == (40, 30) and data.y.shape == (40,)
    assert len({space.arch_hash(a) for a in data.archs}) == 40
    assert stored == [(str(a), acc[str(a)]) for a in data.archs]
    np.testing.assert_array_equal(data.X, space.encode_many(data.archs))
    # Resuming: already measured archs are skipped.
    more = sample_dataset(
        space,
        10,
        lambda arch: acc[str(arch)],
        np.random.default_rng(0),
        exclude=[space.arch_hash(a) for a in data.archs],
    )
    assert not {space.arch_hash(a) for a in more.archs} & {space.arch_hash(a) for a in data.archs}


def test_sample_dataset_bad_input() -> None:
    space = get_space("nb201")
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="finite"):
        sample_dataset(space, 3, lambda arch: float("nan"), rng)
    with pytest.raises(ValueError, match="not a number"):
        sample_dataset(space, 3, lambda arch: "high", rng)  # type: ignore[arg-type, return-value]
    with pytest.raises(ValueError, match="distinct"):
        sample_dataset(space, 5, lambda arch: 1.0, rng, max_draws=3)
    with pytest.raises(ValueError, match="n must be"):
        sample_dataset(space, 0, lambda arch: 1.0, rng)


def test_fit_with_report_cv_and_holdout(nb201_data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = nb201_data
    predictor, report = fit_with_report(X[:100], y[:100], seed=0, n_models=2)
    assert report.source == "cv" and report.n_train == 100
    assert set(report.metrics) == {"n", "kendall_tau", "spearman_rho", "rmse", "top10_precision"}
    assert report.metrics["kendall_tau"] > 0.4 and len(report.fold_kendall_tau) == 5
    assert report.config["n_models"] == 2 and report.tuning is None
    assert predictor.predict(X[100:110]).shape == (10,)
    _, held = fit_with_report(X[:100], y[:100], holdout=(X[100:], y[100:]), n_models=2)
    assert held.source == "holdout" and held.metrics["n"] == len(y) - 100
    assert held.metrics["kendall_tau"] > 0.5
    assert set(held.to_dict()) >= {"metrics", "config", "fit_seconds"}
    with pytest.raises(ValueError, match="at least 10"):
        fit_with_report(X[:8], y[:8])
    with pytest.raises(ValueError, match="tune must be"):
        fit_with_report(X[:50], y[:50], tune="yes")


def test_tuning_within_budget(nb201_data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = nb201_data
    result = tune_params(X[:120], y[:120], seed=0, timeout=3.0, n_trials=4)
    assert 1 <= result.n_trials <= 4
    assert isinstance(result.params, GBDTParams)
    # The defaults are the first trial: tuning never reports worse than them.
    assert result.cv_kendall_tau >= result.default_cv_kendall_tau
    _, report = fit_with_report(X[:60], y[:60], tune="auto", n_models=1)
    assert report.tuning is None  # too few samples for "auto" to tune
    _, report = fit_with_report(X[:60], y[:60], tune=True, tune_timeout=1.0, n_models=1)
    assert report.tuning is not None and report.config["params"] == report.tuning["params"]
