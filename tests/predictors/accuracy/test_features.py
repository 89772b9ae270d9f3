"""Encoding map by probing, one-hot block detection, count features."""

from __future__ import annotations

import numpy as np
import pytest

from predictors.accuracy import (
    SumFeatures,
    auto_sum_features,
    encoding_map,
    ofa_sum_features,
    one_hot_blocks,
    predictor_features,
    space_sum_features,
)
from supernets import get_space
from supernets.spaces import NB201_OPS, OFAMobileNetV3Space


def test_nb201_blocks_and_counts() -> None:
    space = get_space("nb201")
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(50)]
    X = space.encode_many(archs)
    assert one_hot_blocks(X) == [tuple(range(5 * e, 5 * e + 5)) for e in range(6)]
    feats = auto_sum_features(X)
    assert len(feats.groups) == 5  # one count per op; the block total is constant
    out = feats.transform(X)
    assert out.shape == (50, 35)
    for arch, row in zip(archs, out, strict=True):
        assert list(row[30:]) == [arch.ops.count(op) for op in NB201_OPS]
    # Built from the space instead: the same counts, with readable names.
    named = space_sum_features(space)
    assert named.groups == feats.groups
    assert named.names[3] == "count(edge* = nor_conv_3x3)"


def test_ofa_encoding_map_and_counts() -> None:
    space = get_space("ofa-mbv3-tiny")
    assert isinstance(space, OFAMobileNetV3Space)
    emap = encoding_map(space)
    nr = len(space.resolutions)
    assert emap.controlled["ks0"] == (nr, nr + 1, nr + 2)
    assert emap.indicators[("ks0", 5)] == (nr + 1,)
    assert ("d0", 3) not in emap.indicators  # depth has no one-hot bit of its own
    # Depth 3 vs 4 in stage 0 switches block slots 2 and 3 on and off.
    assert set(emap.controlled["d0"]) >= {nr + 2 * 3, nr + 3 * 3}
    feats = space_sum_features(space)
    assert feats.names == tuple(f"count(ks* = {k})" for k in (3, 5, 7)) + tuple(
        f"count(e* = {e})" for e in (3, 4, 6)
    )
    arch = space.max_arch()
    counts = feats.transform(space.encode(arch)[None, :])[0, space.feature_dim :]
    assert counts.sum() == 2 * sum(arch.d)
    # Found from data alone, OFA's blocks are pooled (kernel and expand both
    # have 3 values), and "how many blocks" comes out as a feature of its own.
    rng = np.random.default_rng(1)
    X = space.encode_many(space.sample(rng) for _ in range(60))
    auto = auto_sum_features(X)
    assert auto.names[-1] == "count(present blocks of 3)"


def test_sum_features_round_trip_and_checks() -> None:
    feats = SumFeatures(((0, 2), (1,)), ("a", "b"))
    assert SumFeatures.from_dict(feats.to_dict()) == feats
    np.testing.assert_array_equal(feats.transform(np.array([[1.0, 2, 3]])), [[1, 2, 3, 4, 2]])
    with pytest.raises(ValueError, match="beyond"):
        feats.transform(np.ones((1, 2)))
    with pytest.raises(ValueError, match="one name per group"):
        SumFeatures(((0,),), ())


@pytest.mark.parametrize("name", ["ofa-mbv3-tiny", "ofa-mbv3-w1.2"])
def test_ofa_features_are_the_summaries_they_name(name: str) -> None:
    space = get_space(name)
    assert isinstance(space, OFAMobileNetV3Space)
    feats = ofa_sum_features(space)
    assert predictor_features(space) == feats
    rng = np.random.default_rng(3)
    archs = [space.sample(rng) for _ in range(40)] + [space.min_arch(), space.max_arch()]
    out = feats.transform(space.encode_many(archs))[:, space.feature_dim :]
    for arch, row in zip(archs, out, strict=True):
        active = space.active_slots(arch)
        expected = [float(arch.r >= r) for r in space.resolutions[1:]]
        expected += [sum(arch.ks[s] == k for s in active) for k in space.kernel_sizes]
        expected += [sum(arch.e[s] == e for s in active) for e in space.expand_ratios]
        expected += [sum(arch.d)]
        assert list(row) == expected, arch


def test_other_spaces_keep_the_features_found_in_the_data() -> None:
    assert predictor_features(get_space("nb201")) == "auto"


def test_service_and_loop_predictors_use_the_space_features() -> None:
    from nas.settings import default_predictor
    from predictors.accuracy import GBDTAccuracyPredictor, fit_with_report

    space = get_space("ofa-mbv3-tiny")
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(30)]
    X = space.encode_many(archs)
    y = np.array([float(a.r) + 0.1 * sum(a.d) for a in archs])
    feats = predictor_features(space)
    model = default_predictor(0, features=feats).fit(X, y)
    assert isinstance(model, GBDTAccuracyPredictor)
    assert model.derived_features == feats
    predictor, _ = fit_with_report(X, y, features=feats)
    reloaded = GBDTAccuracyPredictor.from_bytes(predictor.to_bytes())
    assert reloaded.derived_features == feats
    np.testing.assert_allclose(reloaded.predict(X), predictor.predict(X))
