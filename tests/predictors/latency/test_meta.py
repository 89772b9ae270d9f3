from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from predictors.latency import DeviceLatencyPredictor, MetaLatencyPredictor, MetaParams
from predictors.metrics import spearman_rho, within_tolerance

# `nb201` is the conftest's Slice: X (all cells), Y (all devices), train/test rows.
Slice = Any


def test_fit_chooses_at_most_ten_distinct_reference_rows(
    nb201_meta: MetaLatencyPredictor, sources: tuple[str, ...]
) -> None:
    idx = nb201_meta.reference_indices
    assert 1 <= idx.size <= 10
    assert len(set(idx.tolist())) == idx.size
    assert idx.min() >= 0 and idx.max() < 800
    assert nb201_meta.source_devices == sources
    assert nb201_meta.target_space in ("lin", "log")
    assert set(nb201_meta.info["episode_scores"]) == {
        f"{s}@{j:g}" for s in ("lin", "log") for j in MetaParams().jitters
    }


@pytest.mark.parametrize("device", ["gold_6226", "fpga", "titan_rtx_256", "eyeriss"])
def test_adapts_to_unseen_device_on_unseen_archs(
    nb201: Slice, nb201_meta: MetaLatencyPredictor, device: str
) -> None:
    tr, te = nb201.train_rows, nb201.test_rows
    idx = tr[nb201_meta.reference_indices]
    y = nb201.Y[device]
    dev = nb201_meta.adapt(nb201.X[idx], y[idx], device=device)
    pred = dev.predict(nb201.X[te])
    assert pred.shape == (te.size,)
    assert spearman_rho(y[te], pred) > 0.93
    assert within_tolerance(y[te], pred, 0.1) > 0.5
    assert dev.device == device and dev.n_measurements == idx.size


def test_adapt_is_fast(nb201: Slice, nb201_meta: MetaLatencyPredictor) -> None:
    idx = nb201.train_rows[nb201_meta.reference_indices]
    y = nb201.Y["fpga"][idx]
    start = time.perf_counter()
    for _ in range(20):
        nb201_meta.adapt(nb201.X[idx], y)
    assert (time.perf_counter() - start) / 20 < 0.1


def test_more_measurements_and_any_rows_work(
    nb201: Slice, nb201_meta: MetaLatencyPredictor
) -> None:
    rows = nb201.train_rows[:40]
    y = nb201.Y["raspi4"]
    dev = nb201_meta.adapt(nb201.X[rows], y[rows])
    assert spearman_rho(y[nb201.test_rows], dev.predict(nb201.X[nb201.test_rows])) > 0.8


def test_source_predictor_reproduces_a_source_device(
    nb201: Slice, nb201_meta: MetaLatencyPredictor
) -> None:
    te = nb201.test_rows
    model = nb201_meta.source_predictor("silver_4114")
    assert spearman_rho(nb201.Y["silver_4114"][te], model.predict(nb201.X[te])) > 0.9
    with pytest.raises(ValueError, match="unknown device 'nope'"):
        nb201_meta.source_predictor("nope")


def test_recovers_synthetic_additive_devices_exactly() -> None:
    # latency = fixed part + per-(slot, choice) costs: what real devices look like
    rng = np.random.default_rng(1)
    X = np.zeros((400, 24))
    X[np.arange(400)[:, None], np.arange(0, 24, 4) + rng.integers(0, 4, size=(400, 6))] = 1.0
    base = rng.uniform(0.5, 2.0, size=24)

    def device(seed: int) -> np.ndarray:
        r = np.random.default_rng(seed)
        return 3.0 + X @ (base * r.uniform(0.7, 1.3, size=24) * r.uniform(1, 10))

    meta = MetaLatencyPredictor(seed=0).fit(X[:300], {f"d{i}": device(i)[:300] for i in range(8)})
    y = device(100)
    idx = meta.reference_indices
    pred = meta.adapt(X[idx], y[idx]).predict(X[300:])
    assert spearman_rho(y[300:], pred) > 0.95
    assert within_tolerance(y[300:], pred, 0.1) > 0.9


def test_explicit_reference_indices_and_one_source(nb201: Slice) -> None:
    tr = nb201.train_rows[:200]
    meta = MetaLatencyPredictor(seed=0).fit(
        nb201.X[tr], {"1080ti_1": nb201.Y["1080ti_1"][tr]}, reference_indices=[3, 1, 4]
    )
    assert meta.reference_indices.tolist() == [3, 1, 4]
    np.testing.assert_array_equal(meta.reference_features, nb201.X[tr][[3, 1, 4]])
    assert meta.info["episode_scores"] == {}  # one device: nothing to hold out
    pred = meta.adapt(nb201.X[tr][[3, 1, 4]], nb201.Y["titanx_1"][tr][[3, 1, 4]]).predict(
        nb201.X[tr]
    )
    assert np.all(pred > 0)


def test_outlier_measurement_is_left_out(nb201: Slice, nb201_meta: MetaLatencyPredictor) -> None:
    rows, te = nb201.train_rows[:30], nb201.test_rows
    y = nb201.Y["gold_6226"][rows].copy()
    assert nb201_meta.adapt(nb201.X[rows], y).outliers == ()
    y[4] = y[4] / 500.0  # a failed measurement (e.g. the cell was pruned away)
    dev = nb201_meta.adapt(nb201.X[rows], y)
    assert dev.outliers == (4,)
    good = np.delete(np.arange(30), 4)
    without = nb201_meta.adapt(nb201.X[rows][good], y[good])
    truth = nb201.Y["gold_6226"][te]
    rho = spearman_rho(truth, dev.predict(nb201.X[te]))
    assert rho == pytest.approx(spearman_rho(truth, without.predict(nb201.X[te])), abs=1e-3)
    assert rho > 0.9


def test_save_load_roundtrip(
    tmp_path: Path, nb201: Slice, nb201_meta: MetaLatencyPredictor
) -> None:
    nb201_meta.metadata["space"] = "nb201"
    path = nb201_meta.save(tmp_path / "meta.json")
    loaded = MetaLatencyPredictor.load(path)
    assert loaded.metadata["space"] == "nb201"
    np.testing.assert_array_equal(loaded.reference_indices, nb201_meta.reference_indices)
    idx = nb201.train_rows[nb201_meta.reference_indices]
    y = nb201.Y["pixel2"][idx]
    a = nb201_meta.adapt(nb201.X[idx], y)
    b = loaded.adapt(loaded.reference_features, y, device="pixel2")
    X = nb201.X[nb201.test_rows]
    np.testing.assert_allclose(a.predict(X), b.predict(X))
    dev_path = b.save(tmp_path / "dev.json")
    c = DeviceLatencyPredictor.load(dev_path)
    assert c.device == "pixel2" and c.n_measurements == idx.size
    np.testing.assert_allclose(c.predict(X), b.predict(X))
    assert DeviceLatencyPredictor.from_bytes(b.to_bytes()).space == b.space


def test_bad_input_gives_clear_errors(nb201: Slice, nb201_meta: MetaLatencyPredictor) -> None:
    X = nb201.X[:10]
    y = nb201.Y["fpga"][:10]
    with pytest.raises(ValueError, match="wrong number of latencies"):
        nb201_meta.adapt(X, y[:9])
    bad = y.copy()
    bad[2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        nb201_meta.adapt(X, bad)
    bad[2] = -1.0
    with pytest.raises(ValueError, match="positive"):
        nb201_meta.adapt(X, bad)
    bad[2] = 0.0
    with pytest.raises(ValueError, match="positive"):
        nb201_meta.adapt(X, bad)
    with pytest.raises(ValueError, match="feature width mismatch"):
        nb201_meta.adapt(X[:, :29], y)
    dev = nb201_meta.adapt(X, y)
    with pytest.raises(ValueError, match="feature width mismatch"):
        dev.predict(np.zeros((3, 31)))
    assert dev.predict(X[0]).shape == (1,)  # one 1-D row is one architecture
    with pytest.raises(ValueError, match="non-empty dict"):
        MetaLatencyPredictor().fit(X, {})
    with pytest.raises(ValueError, match="wrong number of latencies"):
        MetaLatencyPredictor().fit(X, {"a": y[:5]})
    with pytest.raises(ValueError, match="reference_indices"):
        MetaLatencyPredictor().fit(X, {"a": y}, reference_indices=[10])
    with pytest.raises(RuntimeError, match="not fitted"):
        _ = MetaLatencyPredictor().reference_indices
    with pytest.raises(ValueError, match="not a saved MetaLatencyPredictor"):
        MetaLatencyPredictor.from_bytes(b'{"format": "other"}')
    with pytest.raises(ValueError, match="n_references"):
        MetaParams(n_references=11)
