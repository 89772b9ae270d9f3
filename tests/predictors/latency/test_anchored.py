"""Anchored measurements: drift since registration divided out, noise flagged."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from predictors.latency import DeviceSpec, measure_archs
from predictors.latency.anchored import (
    MAX_ANCHOR_DISAGREEMENT,
    MAX_RELATIVE_SPREAD,
    choose_anchors,
    measure_anchored,
    noise_warnings,
)
from supernets import OFAMobileNetV3Space, get_space

SPEC = DeviceSpec(backend="torch-cpu", threads=1, batch=1)


def test_choose_anchors_spans_the_latency_range() -> None:
    measured = [(f"a{i}", float(ms)) for i, ms in enumerate([5, 1, 9, 3, 7])]
    assert choose_anchors(measured, 3) == [("a1", 1.0), ("a0", 5.0), ("a2", 9.0)]
    assert choose_anchors(measured, 1) == [("a0", 5.0)]
    assert choose_anchors(measured[:2], 3) == [("a1", 1.0), ("a0", 5.0)]
    with pytest.raises(ValueError, match="n must be"):
        choose_anchors(measured, 0)


def test_drift_is_divided_out() -> None:
    space = get_space("ofa-mbv3-tiny")
    rng = np.random.default_rng(0)
    target, anchor_a, anchor_b = (space.sample(rng) for _ in range(3))
    now_a, now_b = measure_archs(space, [anchor_a, anchor_b], SPEC, repeats=9, rounds=3)
    # As if the machine had been ten times as fast at registration (far
    # outside the load swings of a shared machine between two measurements).
    anchors = [(anchor_a, now_a.median_ms / 10), (anchor_b, now_b.median_ms / 10)]
    (m,) = measure_anchored(space, [target], anchors, SPEC, repeats=9, rounds=3)
    assert m.latency_ms == pytest.approx(m.raw_ms / m.drift)
    assert m.drift == pytest.approx(float(np.exp(np.mean(np.log(m.anchor_ratios)))))
    assert 4.0 < m.drift < 25.0  # about 10, give or take the load
    assert m.to_dict()["raw_ms"] == m.raw_ms
    # No anchors: nothing to divide by.
    (plain,) = measure_anchored(space, [target], [], SPEC, repeats=3, rounds=1)
    assert plain.drift == 1.0 and plain.latency_ms == plain.raw_ms and plain.anchor_ratios == ()
    with pytest.raises(ValueError, match="must be positive"):
        measure_anchored(space, [target], [(anchor_a, 0.0)], SPEC, repeats=3)


def test_noise_is_named() -> None:
    space = get_space("ofa-mbv3-tiny")
    assert isinstance(space, OFAMobileNetV3Space)
    (m,) = measure_archs(space, [space.min_arch()], SPEC, repeats=3, rounds=1)
    quiet = replace(m, median_ms=10.0, q25_ms=9.9, q75_ms=10.1)
    assert noise_warnings([quiet], [1.2, 1.21]) == []
    scattered = replace(quiet, q25_ms=8.0, q75_ms=8.0 + 10.0 * (MAX_RELATIVE_SPREAD + 0.05))
    (spread,) = noise_warnings([quiet, scattered, scattered], [1.0])
    assert "scatter" in spread
    # One network's burst of scatter alone is not a noisy machine.
    assert noise_warnings([quiet, quiet, scattered], [1.0]) == []
    ratios = [1.0, 1.0 + MAX_ANCHOR_DISAGREEMENT + 0.05]
    (disagree,) = noise_warnings([quiet], ratios)
    assert "anchors disagree" in disagree
