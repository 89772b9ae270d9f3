"""The labelled proxy answer for supernets without images: the subnet with the
most MACs whose predicted latency meets the budget."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from nas.costs import macs_and_params
from nas.proxy import PROXY_RULE, largest_macs_under_budget
from supernets import OFAMobileNetV3Space, get_space


def _ofa_space() -> OFAMobileNetV3Space:
    space = get_space("ofa-mbv3")
    assert isinstance(space, OFAMobileNetV3Space)
    return space


SPACE = _ofa_space()


class MacsLatency:
    """A latency model proportional to MACs: under it the rule's answer is
    known for the extremes (largest and smallest subnet)."""

    def predict_archs(self, archs: Sequence[Any]) -> np.ndarray:
        return macs_and_params(SPACE, archs).macs / 1e7


def test_answer_fits_and_beats_every_sampled_feasible_subnet() -> None:
    model = MacsLatency()
    budget = float(model.predict_archs([SPACE.max_arch()])[0]) / 3
    answer = largest_macs_under_budget(SPACE, model, budget, n_samples=500, n_rounds=5, seed=1)
    assert answer.feasible and answer.latency_ms <= budget
    rng = np.random.default_rng(7)
    others = [SPACE.sample(rng) for _ in range(300)]
    costs = macs_and_params(SPACE, others).macs
    feasible = costs[costs / 1e7 <= budget]
    assert answer.macs >= feasible.max()
    data = answer.to_dict()
    assert data["answer"] == "proxy" and data["accuracy"] is None
    assert data["accuracy_source"] == "none" and data["rule"] == PROXY_RULE


def test_generous_budget_gives_the_largest_subnet_and_limits_bind() -> None:
    model = MacsLatency()
    answer = largest_macs_under_budget(SPACE, model, 1e9, n_samples=50, n_rounds=1)
    assert answer.arch == SPACE.max_arch()
    cap = float(macs_and_params(SPACE, [SPACE.min_arch()]).macs[0]) * 2
    capped = largest_macs_under_budget(SPACE, model, 1e9, max_macs=cap, n_samples=200)
    assert capped.feasible and capped.macs <= cap


def test_nothing_fits_names_the_fastest_found() -> None:
    answer = largest_macs_under_budget(SPACE, MacsLatency(), 1e-6, n_samples=20, n_rounds=1)
    assert not answer.feasible
    assert answer.arch == SPACE.min_arch()
    with pytest.raises(ValueError, match="budget_ms must be positive"):
        largest_macs_under_budget(SPACE, MacsLatency(), 0.0)
