"""SHAP choice effects and GBDT-NAS pruning on NAS-Bench-201."""

from __future__ import annotations

import numpy as np
import pytest

from predictors.accuracy import GBDTAccuracyPredictor, choice_effects, prune_space, sample_pruned
from supernets import get_space
from supernets.tables import nb201_accuracy


def test_effects_name_choices_and_match_known_good_ops(
    nb201_data: tuple[np.ndarray, np.ndarray],
) -> None:
    space = get_space("nb201")
    X, y = nb201_data[0][:200], nb201_data[1][:200]
    result = prune_space(space, X, y, seed=0)
    names = {e.name for e in result.effects}
    assert "edge0 = nor_conv_3x3" in names and len(names) == 30
    best, worst = result.effects[0], result.effects[-1]
    assert best.value == "nor_conv_3x3" and best.effect > 0
    assert worst.value in ("none", "avg_pool_3x3") and worst.effect < 0
    assert all(e.n_samples > 0 and e.stderr >= 0 for e in result.effects)
    # The pruned space keeps convolutions everywhere, drops harmful choices,
    # and still holds the best cell of the whole benchmark.
    assert set(result.choices) == set(space.choices())
    assert all("nor_conv_3x3" in values for values in result.choices.values())
    assert result.removed and all(e.effect + 2 * e.stderr < 0 for e in result.removed)
    assert 0 < result.kept_fraction < 0.1
    acc = nb201_accuracy()
    best_cell = space.validate(max(acc, key=acc.__getitem__))
    params = space.to_params(best_cell)
    assert all(params[p] in values for p, values in result.choices.items())
    # Sampling from the pruned space stays inside it and is much better on average.
    rng = np.random.default_rng(0)
    pruned = [sample_pruned(space, result.choices, rng) for _ in range(50)]
    assert all(space.to_params(a)[p] in v for a in pruned for p, v in result.choices.items())
    assert np.mean([acc[str(a)] for a in pruned]) > np.mean(list(acc.values())) + 3


def test_min_keep_threshold_and_fitted_predictor(
    nb201_data: tuple[np.ndarray, np.ndarray],
) -> None:
    space = get_space("nb201")
    X, y = nb201_data[0][:150], nb201_data[1][:150]
    predictor = GBDTAccuracyPredictor(seed=1, n_models=2).fit(X, y)
    loose = prune_space(space, X, predictor=predictor, threshold=1e9)
    assert loose.choices == space.choices() and not loose.removed
    # GBDT-NAS's own rule (any negative mean) prunes more than the default.
    paper = prune_space(space, X, predictor=predictor, confidence=0.0)
    default = prune_space(space, X, predictor=predictor)
    assert paper.kept_fraction < default.kept_fraction
    assert all(e.effect < 0 for e in paper.removed)
    strict = prune_space(space, X, predictor=predictor, confidence=0.0, min_keep=2)
    assert all(len(v) >= 2 for v in strict.choices.values())
    d = strict.to_dict()
    assert set(d) == {"effects", "choices", "removed", "kept_fraction"}


def test_ofa_effects_cover_depth_and_skip_inactive_blocks() -> None:
    space = get_space("ofa-mbv3-tiny")
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(120)]
    X = space.encode_many(archs)
    # A synthetic "accuracy": deeper stage 0 and kernel 7 in its first block help.
    y = np.array([a.d[0] * 1.0 + (a.ks[0] == 7) * 2.0 for a in archs]) + rng.normal(0, 0.1, 120)
    predictor = GBDTAccuracyPredictor(seed=0, n_models=2).fit(X, y)
    effects = {e.name: e for e in choice_effects(space, predictor, X)}
    assert effects["ks0 = 7"].effect > 0 > effects["ks0 = 3"].effect
    assert effects["d0 = 4"].effect > 0 > effects["d0 = 2"].effect
    # Slot 3 exists only in depth-4 stages: its kernel choices are counted there only.
    n_deep = sum(a.d[0] == 4 for a in archs)
    assert sum(effects[f"ks3 = {k}"].n_samples for k in (3, 5, 7)) == n_deep


def test_bad_input() -> None:
    space = get_space("nb201")
    with pytest.raises(ValueError, match="needs y"):
        prune_space(space, np.zeros((10, 30)))
    with pytest.raises(ValueError, match="unknown encoding"):
        prune_space(space, np.zeros((10, 29)), np.zeros(10))
    with pytest.raises(ValueError, match="no value"):
        sample_pruned(space, {"edge0": []}, np.random.default_rng(0))
    with pytest.raises(ValueError, match="no value"):
        sample_pruned(space, {"edge0": ["conv_9x9"]}, np.random.default_rng(0))
