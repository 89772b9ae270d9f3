"""Small slices of the bundled HELP tables: fast enough for every test run."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from predictors.latency import MetaLatencyPredictor
from predictors.latency.pretrained import meta_training_data


@dataclass(frozen=True)
class Slice:
    X: np.ndarray  # all 15,625 NB201 cells, encoded
    Y: dict[str, np.ndarray]  # every device of the table
    train_rows: np.ndarray  # rows given to fit
    test_rows: np.ndarray  # rows never seen by fit


@pytest.fixture(scope="session")
def nb201() -> Slice:
    _, _, X, Y = meta_training_data("nb201", devices="all")
    rng = np.random.default_rng(0)
    rows = rng.permutation(X.shape[0])
    return Slice(X, Y, np.sort(rows[:800]), np.sort(rows[800:2800]))


@pytest.fixture(scope="session")
def sources() -> tuple[str, ...]:
    """Meta-training devices of the tests (the others are unseen devices)."""
    return ("1080ti_1", "1080ti_256", "silver_4114", "samsung_a50", "pixel3", "samsung_s7")


@pytest.fixture(scope="session")
def nb201_meta(nb201: Slice, sources: tuple[str, ...]) -> MetaLatencyPredictor:
    tr = nb201.train_rows
    return MetaLatencyPredictor(seed=0).fit(nb201.X[tr], {d: nb201.Y[d][tr] for d in sources})
