"""Shared-cost groups (transfer to unlike devices), calibrated uncertainty, and
the versioned payloads that carry it."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from predictors.latency import (
    DeviceLatencyPredictor,
    MetaLatencyPredictor,
    MetaParams,
    shared_cost_groups,
)
from predictors.latency.meta import UPPER_Z
from predictors.metrics import spearman_rho
from supernets.spaces import get_space

Slice = Any
# one hardware family only (small-batch GPUs): the targets below are unlike all of them
GPUS = ("1080ti_1", "1080ti_32", "2080ti_1", "2080ti_32", "titanx_1", "titanxp_1", "titan_rtx_1")


@pytest.fixture(scope="module")
def gpu_metas(nb201: Slice) -> tuple[MetaLatencyPredictor, MetaLatencyPredictor]:
    tr = nb201.train_rows
    Y = {d: nb201.Y[d][tr] for d in GPUS}
    groups = shared_cost_groups(get_space("nb201"))
    with_groups = MetaLatencyPredictor(seed=0).fit(nb201.X[tr], Y, groups=groups)
    plain = MetaLatencyPredictor(
        seed=0, params=MetaParams(group_scales=(0.0,), groups_per_device=False)
    ).fit(nb201.X[tr], Y)
    return with_groups, plain


def _rho(meta: MetaLatencyPredictor, nb201: Slice, device: str) -> float:
    idx = nb201.train_rows[meta.reference_indices]
    y = nb201.Y[device]
    pred = meta.adapt(nb201.X[idx], y[idx]).predict(nb201.X[nb201.test_rows])
    return spearman_rho(y[nb201.test_rows], pred)


def test_shared_costs_transfer_to_unlike_devices(
    nb201: Slice, gpu_metas: tuple[MetaLatencyPredictor, MetaLatencyPredictor]
) -> None:
    with_groups, plain = gpu_metas
    assert with_groups.info["n_groups"] == 5 and plain.info["n_groups"] == 0
    gains = {
        d: _rho(with_groups, nb201, d) - _rho(plain, nb201, d)
        for d in ("eyeriss", "titanx_256", "raspi4")
    }
    assert np.mean(list(gains.values())) > 0.05, gains
    # a device like the sources loses nothing that matters
    assert _rho(with_groups, nb201, "titanxp_32") > _rho(plain, nb201, "titanxp_32") - 0.02


def test_groups_are_checked(nb201: Slice) -> None:
    X, y = nb201.X[:50], {"a": nb201.Y["fpga"][:50], "b": nb201.Y["pixel3"][:50]}
    with pytest.raises(ValueError, match=r"groups must be a \(n_features=30, n_groups\)"):
        MetaLatencyPredictor().fit(X, y, groups=np.ones((29, 2)))
    with pytest.raises(ValueError, match="group_scales"):
        MetaParams(group_scales=(-1.0,))
    tiny = get_space("ofa-mbv3-tiny")
    G = shared_cost_groups(tiny)
    assert G is not None and G.shape[0] == tiny.feature_dim
    # every active block sets one kernel column: the "block present" group counts depth
    X = tiny.encode_many([tiny.sample(np.random.default_rng(i)) for i in range(5)])
    depth = [sum(tiny.decode(x).d) for x in X]
    np.testing.assert_allclose(X @ G[:, -1], depth)


def test_upper_bound_is_calibrated_on_unseen_devices(
    nb201: Slice, nb201_meta: MetaLatencyPredictor
) -> None:
    te = nb201.test_rows
    idx = nb201.train_rows[nb201_meta.reference_indices]
    covers = []
    for device in ("gold_6226", "fpga", "titan_rtx_256", "eyeriss", "pixel2", "raspi4"):
        y = nb201.Y[device]
        dev = nb201_meta.adapt(nb201.X[idx], y[idx])
        mean, std = dev.predict_with_uncertainty(nb201.X[te])
        np.testing.assert_allclose(mean, dev.predict(nb201.X[te]))
        assert np.all(std > 0)
        covers.append(np.mean(y[te] <= mean + UPPER_Z * std))
    assert 0.75 <= np.mean(covers) <= 0.98, covers


def test_uncertainty_grows_where_measurements_disagree(
    nb201: Slice, nb201_meta: MetaLatencyPredictor
) -> None:
    idx = nb201.train_rows[nb201_meta.reference_indices]
    y = nb201.Y["fpga"][idx]
    calm = nb201_meta.adapt(nb201.X[idx], y)
    noisy = nb201_meta.adapt(nb201.X[idx], y * np.resize([0.7, 1.4], y.size))
    X = nb201.X[nb201.test_rows]
    rel = lambda m: np.mean(m.predict_with_uncertainty(X)[1] / m.predict(X))  # noqa: E731
    assert rel(noisy) > 1.5 * rel(calm)
    more = nb201.train_rows[:60]
    many = nb201_meta.adapt(nb201.X[more], nb201.Y["fpga"][more])
    assert rel(many) < rel(calm)  # more measurements, narrower bounds


def test_payload_versions(nb201: Slice, nb201_meta: MetaLatencyPredictor) -> None:
    idx = nb201.train_rows[nb201_meta.reference_indices]
    dev = nb201_meta.adapt(nb201.X[idx], nb201.Y["pixel2"][idx], device="p2")
    X = nb201.X[nb201.test_rows[:50]]
    payload = json.loads(dev.to_bytes())
    assert payload["format_version"] == 2
    again = DeviceLatencyPredictor.from_bytes(dev.to_bytes())
    for a, b in zip(
        again.predict_with_uncertainty(X), dev.predict_with_uncertainty(X), strict=True
    ):
        np.testing.assert_allclose(a, b)
    # version 1 (before uncertainty) still loads and predicts
    old = {
        k: v
        for k, v in payload.items()
        if k not in ("posterior_cov", "noise", "cov_scale", "calibration")
    }
    old["format_version"] = 1
    v1 = DeviceLatencyPredictor.from_bytes(json.dumps(old).encode())
    np.testing.assert_allclose(v1.predict(X), dev.predict(X))
    assert not v1.has_uncertainty
    with pytest.raises(ValueError, match=r"no uncertainty .* adapt it again"):
        v1.predict_with_uncertainty(X)
    broken = dict(payload)
    del broken["posterior_cov"]
    with pytest.raises(
        ValueError, match=r"format version 2\) lacks field\(s\) \['posterior_cov'\]"
    ):
        DeviceLatencyPredictor.from_bytes(json.dumps(broken).encode())
    with pytest.raises(ValueError, match="format version 3; this hwnas reads versions"):
        DeviceLatencyPredictor.from_bytes(json.dumps({**payload, "format_version": 3}).encode())
    with pytest.raises(ValueError, match="malformed: posterior_cov"):
        DeviceLatencyPredictor.from_bytes(
            json.dumps({**payload, "posterior_cov": [[1.0]]}).encode()
        )
    # a version-1 meta-predictor (no groups, no calibration) still adapts
    meta = json.loads(nb201_meta.to_bytes())
    assert meta["format_version"] == 2
    for key in ("groups", "group_scale", "calibration"):
        del meta[key]
    meta["format_version"] = 1
    meta_v1 = MetaLatencyPredictor.from_bytes(json.dumps(meta).encode())
    got = meta_v1.adapt(nb201.X[idx], nb201.Y["pixel2"][idx])
    assert got.has_uncertainty and got.calibration == 1.0


def test_device_model_keeps_the_standardised_uncertainty(
    nb201: Slice, nb201_meta: MetaLatencyPredictor
) -> None:
    # the raw-feature covariance a device model stores must give the same sd as
    # the standardised posterior it came from (scaled by the device's residuals)
    from predictors.latency.meta import _adapt_standardised

    f = nb201_meta._fitted
    assert f is not None
    idx = nb201.train_rows[nb201_meta.reference_indices]
    y = nb201.Y["eyeriss"][idx] * np.resize([0.8, 1.25], idx.size)  # residual scale > 1
    Z = (nb201.X[idx] - f.feature_mean) / f.feature_scale
    st = _adapt_standardised(Z, y, f.prior, None, nb201_meta.params)
    assert st.var_scale > 1.0
    dev = nb201_meta.adapt(nb201.X[idx], y)
    X = nb201.X[nb201.test_rows[:200]]
    sd = st.target_sd((X - f.feature_mean) / f.feature_scale) * f.calibration
    _, std = dev.predict_with_uncertainty(X)
    np.testing.assert_allclose(std, st.scale * sd, rtol=1e-8)  # "lin": std = scale * sd
    assert dev.space == "lin"


def test_fit_decides_per_device_shared_costs_on_its_sources(
    nb201: Slice, gpu_metas: tuple[MetaLatencyPredictor, MetaLatencyPredictor]
) -> None:
    """Whether adapt re-picks the shared-cost scale per device is chosen in the
    source episodes, kept in the file, and what adapt then does."""
    from dataclasses import replace

    from predictors.latency import load_pretrained
    from predictors.latency.meta import _adapt_standardised

    meta = gpu_metas[0]
    info = meta.info
    assert any(k.endswith(", fixed groups") for k in info["episode_scores"])
    assert info["groups_per_device"] in (True, False)
    # the shipped tiny predictor's sources said: adapting without it is better
    tiny = load_pretrained("ofa-mbv3-tiny")
    assert tiny.info["groups_per_device"] is False and tiny.params.groups_per_device is True
    payload = json.loads(tiny.to_bytes())
    assert payload["groups_per_device"] is False
    del payload["groups_per_device"]  # a file written before fit chose it
    legacy = MetaLatencyPredictor.from_bytes(json.dumps(payload).encode())
    assert legacy._require_fitted().groups_per_device is True
    # adapt follows the stored choice, not the parameter
    f = tiny._require_fitted()
    X = f.reference_features
    y = np.exp(X @ np.linspace(0.01, 0.02, X.shape[1]))
    Z = (X - f.feature_mean) / f.feature_scale
    off = _adapt_standardised(Z, y, f.prior, None, replace(tiny.params, groups_per_device=False))
    np.testing.assert_allclose(tiny.adapt(X, y).coef, off.coef / f.feature_scale)
    with pytest.raises(ValueError, match="groups_per_device_z"):
        MetaParams(groups_per_device_z=-1.0)
