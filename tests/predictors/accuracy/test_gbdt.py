"""GBDTAccuracyPredictor: fit/predict/uncertainty, persistence, input checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from predictors.accuracy import GBDTAccuracyPredictor, space_sum_features
from predictors.accuracy.gbdt import _from_normal_scores
from predictors.metrics import kendall_tau
from supernets import get_space


def test_fit_predict_shapes_and_ranking(nb201_data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = nb201_data
    p = GBDTAccuracyPredictor(seed=0).fit(X[:200], y[:200])
    mean = p.predict(X[200:])
    assert mean.shape == (1000,)
    assert kendall_tau(y[200:], mean) > 0.5
    mean2, std = p.predict_with_uncertainty(X[200:])
    assert np.allclose(mean, mean2)
    assert std.shape == (1000,) and (std >= 0).all() and std.mean() > 0


def test_same_seed_same_model(nb201_data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = nb201_data
    a = GBDTAccuracyPredictor(seed=3).fit(X[:100], y[:100]).predict(X[100:300])
    b = GBDTAccuracyPredictor(seed=3).fit(X[:100], y[:100]).predict(X[100:300])
    np.testing.assert_allclose(a, b)


def test_mixed_ensemble_alternates_objectives() -> None:
    assert GBDTAccuracyPredictor(n_models=5).member_objectives() == [
        "regression",
        "pairwise",
        "regression",
        "pairwise",
        "regression",
    ]
    assert (
        GBDTAccuracyPredictor(objective="pairwise", n_models=2).member_objectives()
        == ["pairwise"] * 2
    )


def test_pairwise_objective(nb201_data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = nb201_data
    p = GBDTAccuracyPredictor(seed=0, objective="pairwise").fit(X[:200], y[:200])
    mean = p.predict(X[200:])
    assert kendall_tau(y[200:], mean) > 0.4
    # Mapped back to the accuracy scale, not left as raw ranking scores.
    assert 0.0 < np.median(mean) < 100.0


def test_save_load_round_trip(tmp_path: Path, nb201_data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = nb201_data
    p = GBDTAccuracyPredictor(seed=1, n_models=3).fit(X[:100], y[:100])
    path = p.save(tmp_path / "model.json")
    q = GBDTAccuracyPredictor.load(path)
    np.testing.assert_allclose(q.predict(X[100:]), p.predict(X[100:]))
    np.testing.assert_allclose(
        q.predict_with_uncertainty(X[100:])[1], p.predict_with_uncertainty(X[100:])[1]
    )
    assert q.get_config() == p.get_config()
    with pytest.raises(ValueError, match="not a saved"):
        GBDTAccuracyPredictor.from_bytes(b"{}")


@pytest.mark.parametrize(
    ("X", "y", "msg"),
    [
        (np.zeros((10, 3)), np.zeros(9), "same length"),
        (np.zeros((10, 3)), np.r_[np.zeros(9), np.nan], "NaN"),
        (np.zeros((3, 3)), np.zeros(3), "at least"),
        (np.zeros(10), np.zeros(10), "2-D"),
        (np.full((10, 3), np.nan), np.zeros(10), "finite"),
    ],
)
def test_bad_training_input(X: np.ndarray, y: np.ndarray, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        GBDTAccuracyPredictor().fit(X, y)


def test_bad_prediction_input(nb201_data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = nb201_data
    with pytest.raises(ValueError, match="not fitted"):
        GBDTAccuracyPredictor().predict(X)
    p = GBDTAccuracyPredictor(n_models=2).fit(X[:50], y[:50])
    with pytest.raises(ValueError, match="unknown encoding"):
        p.predict(np.zeros((4, X.shape[1] + 1)))
    not_one_hot = X[:4].copy()
    not_one_hot[:, 7] = 3.0
    with pytest.raises(ValueError, match=r"unknown encoding: column\(s\) \[7\]"):
        p.predict(not_one_hot)
    # The same check survives a save/load round trip.
    with pytest.raises(ValueError, match="unknown encoding"):
        GBDTAccuracyPredictor.from_bytes(p.to_bytes()).predict(not_one_hot)
    assert p.predict(X[0]).shape == (1,)  # one encoded architecture as a 1-D vector


def test_regression_objective_and_standardized_target(
    nb201_data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = nb201_data
    p = GBDTAccuracyPredictor(seed=0, objective="regression", target="standardize")
    mean = p.fit(X[:200], y[:200]).predict(X[200:])
    assert kendall_tau(y[200:], mean) > 0.4


def test_scores_beyond_training_range_stay_ordered() -> None:
    # The best architectures are often better than every training sample: the
    # map from normal scores back to accuracy must not clip them into one tie.
    y_sorted = np.array([10.0, 80.0, 85.0, 90.0, 92.0, 93.0])
    out = _from_normal_scores(np.array([-4.0, -3.0, 0.0, 3.0, 4.0]), y_sorted)
    assert np.all(np.diff(out) > 0)
    assert out[0] < 10.0 and out[-1] > 93.0


def test_parallel_members_give_the_same_model(nb201_data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = nb201_data
    a = GBDTAccuracyPredictor(seed=2, n_models=3).fit(X[:100], y[:100]).predict(X[100:200])
    b = (
        GBDTAccuracyPredictor(seed=2, n_models=3, n_jobs=2)
        .fit(X[:100], y[:100])
        .predict(X[100:200])
    )
    np.testing.assert_allclose(a, b)


@pytest.mark.parametrize(
    ("kwargs", "msg"),
    [
        ({"n_models": 0}, "n_models"),
        ({"objective": "lambdamart"}, "objective"),
        ({"target": "log"}, "target"),
        ({"features": "pairs"}, "features"),
        ({"params": {"depth": 3}}, "unknown GBDT parameter"),
        ({"n_jobs": 0}, "n_jobs"),
    ],
)
def test_bad_configuration(kwargs: dict, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        GBDTAccuracyPredictor(**kwargs)


def test_space_features_survive_save_load(nb201_data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = nb201_data
    feats = space_sum_features(get_space("nb201"))
    p = GBDTAccuracyPredictor(seed=0, n_models=2, features=feats).fit(X[:80], y[:80])
    q = GBDTAccuracyPredictor.from_bytes(p.to_bytes())
    assert q.derived_features == feats and q.features == feats
    np.testing.assert_allclose(q.predict(X[80:120]), p.predict(X[80:120]))


def test_contributions_add_up_to_the_score(nb201_data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = nb201_data
    p = GBDTAccuracyPredictor(seed=0, n_models=3).fit(X[:100], y[:100])
    phi = p.contributions(X[100:140])
    assert phi.shape == (40, p.design_matrix(X[:1]).shape[1] + 1)
    # Additivity: SHAP values sum to the ensemble's mean score, which maps
    # monotonically to predicted accuracy.
    score = phi.sum(axis=1)
    assert kendall_tau(score, p.predict(X[100:140])) > 0.95
    assert p.accuracy_per_score() > 0
