"""Shared NAS-Bench-201 sample: real CIFAR-10 accuracies of 1,200 random cells."""

from __future__ import annotations

import numpy as np
import pytest

from supernets import get_space
from supernets.tables import nb201_accuracy


@pytest.fixture(scope="session")
def nb201_data() -> tuple[np.ndarray, np.ndarray]:
    space = get_space("nb201")
    acc = nb201_accuracy()
    strs = sorted(acc)
    pick = np.random.default_rng(0).choice(len(strs), size=1200, replace=False)
    X = space.encode_many(space.validate(strs[i]) for i in pick)
    y = np.array([acc[strs[i]] for i in pick])
    return X, y
