"""FeatureCache: featurised architectures reused across searches on the same
space and latency models, and nothing else; bounded."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from nas.candidates import FeatureCache, Featurizer
from nas.constraints import Constraints
from nas.inner import ExhaustiveInner
from nas.latency import BatchLatency
from supernets import get_space
from supernets.spaces import RestrictedSpace


def _convs(arch: Any) -> float:
    return 1.0 + sum(op.startswith("nor_conv") for op in arch.ops)


def _featurizer(space: Any, source: Any, cache: FeatureCache, budget: float) -> Featurizer:
    lat = BatchLatency(source, space, "d")
    return Featurizer(space, {"d": lat}, Constraints({"d": budget}), cache=cache)


def test_a_second_search_reuses_the_first_ones_features() -> None:
    space = get_space("nb201")
    cache = FeatureCache()
    first = ExhaustiveInner(_featurizer(space, _convs, cache, 4.0)).all
    assert len(cache) == len(first) == 15_625
    computed: list[int] = []
    second_featurizer = _featurizer(space, _convs, cache, 2.0)  # another budget
    real = second_featurizer._compute

    def counting(archs: list[Any], hashes: list[str]) -> None:
        computed.append(len(archs))
        real(archs, hashes)

    second_featurizer._compute = counting  # type: ignore[method-assign]
    second = ExhaustiveInner(second_featurizer).all
    assert computed == []
    assert second.hashes == first.hashes
    np.testing.assert_array_equal(second.latency, first.latency)
    # The violations are this search's own (its budget), not the cached search's.
    assert second.feasible.sum() < first.feasible.sum()


def test_other_models_and_restricted_spaces_are_kept_apart() -> None:
    space = get_space("nb201")
    cache = FeatureCache()
    _featurizer(space, _convs, cache, 4.0).featurize([space.sample(np.random.default_rng(0))])

    def slower(arch: Any) -> float:
        return 2 * _convs(arch)

    other = _featurizer(space, slower, cache, 4.0)
    arch = space.sample(np.random.default_rng(0))
    assert other.featurize([arch]).latency[0, 0] == 2 * _convs(arch)
    restricted = RestrictedSpace(space, {"edge0": ["skip_connect"]})
    archs, _ = _featurizer(restricted, _convs, cache, 4.0).enumerate()
    assert 0 < len(archs) < 15_625
    assert all(restricted.to_params(a)["edge0"] == "skip_connect" for a in archs)


def test_the_cache_is_bounded() -> None:
    space = get_space("nb201")
    cache = FeatureCache(max_entries=2, max_rows=3)
    rng = np.random.default_rng(0)
    sources = [lambda a, k=k: k + _convs(a) for k in range(3)]
    for source in sources:
        _featurizer(space, source, cache, 4.0).featurize([space.sample(rng) for _ in range(5)])
    assert len(cache._rows) == 2  # the least recently used combination dropped
    # An entry that outgrew max_rows starts afresh when taken again.
    again = _featurizer(space, sources[-1], cache, 4.0)
    assert again._cache == {}
    with pytest.raises(ValueError, match="max_entries"):
        FeatureCache(max_entries=0)
