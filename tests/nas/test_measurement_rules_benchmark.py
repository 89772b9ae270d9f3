"""The protocol of benchmarks/measurement_rules.py."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest


@pytest.fixture(scope="module")
def rules(load_benchmark: Callable[[str], ModuleType]) -> Any:
    return load_benchmark("measurement_rules")


def test_tuning_runs_on_no_meta_test_device(rules: Any) -> None:
    tune = rules.devices_of("tune")
    assert tune and not set(tune) & set(rules.bench.META_TEST)
    assert rules.devices_of("report") == list(rules.bench.META_TEST)
    with pytest.raises(ValueError, match="may not run"):
        rules.simulate("tune", "fpga", 50, rules.CONFIGS[0])


def test_a_rule_answers_within_the_true_budget(rules: Any) -> None:
    p = rules.bench.problem("report", "fpga")
    oracle = p.oracle(p.budget(75))
    for config in (("best", 1.0, 1.0), ("gain", 0.6, 0.5)):
        regret = rules.simulate("report", "fpga", 75, config)
        # An answer is a measured fit: never better than the oracle.
        assert 0.0 <= regret <= oracle
