"""Evaluators: the tabular NB201 one and the supernet-backed adapter."""

from __future__ import annotations

import numpy as np
import pytest

from nas import SupernetEvaluator, TabularEvaluator, run_search
from supernets import get_space

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def test_tabular_evaluator_reads_the_bundled_tables() -> None:
    ev = TabularEvaluator()
    arch = ev.space.validate(ARCH)
    assert 10.0 <= ev(arch) <= 100.0
    assert ev(ARCH) == ev(arch)  # official strings are accepted
    lat = ev.latency("pixel3")
    assert lat.measured and lat.device == "pixel3"
    assert lat.predict_archs([arch, arch]).tolist() == [lat(arch)] * 2
    assert "raspi4" in ev.devices and len(ev.all_accuracy) == 15625
    best, acc = ev.oracle("pixel3", 10.0)
    assert lat(best) <= 10.0 and acc == ev.all_accuracy[lat.values <= 10.0].max()
    with pytest.raises(ValueError, match="unknown device"):
        ev.latency("toaster")
    with pytest.raises(ValueError, match="no cell runs"):
        ev.oracle("pixel3", 0.0)
    with pytest.raises(ValueError, match="nb201 space only"):
        TabularEvaluator("ofa-mbv3")


def test_supernet_evaluator_is_a_thin_adapter() -> None:
    torch = pytest.importorskip("torch")
    from supernets import build_supernet, evaluate_subnet, load_dataset

    torch.manual_seed(0)
    space = get_space("ofa-mbv3-tiny")
    supernet = build_supernet(space, 10)
    dataset = load_dataset("digits")
    ev = SupernetEvaluator(supernet, dataset, n_calibration=64)
    arch = space.min_arch()  # type: ignore[attr-defined]
    acc = ev(arch)
    expected = evaluate_subnet(supernet, arch, dataset, n_calibration=64)
    assert acc == pytest.approx(expected.accuracy)  # percent, like the tables
    assert ev.last is not None
    assert ev.last.n_calibration == 64 and ev.space is space

    # It plugs into the loop like any evaluate(arch) -> accuracy.
    from nas import SearchSettings, macs_and_params

    def latency(a: object) -> float:
        return float(macs_and_params(space, [a], n_classes=10).macs[0] / 1e6)

    result = run_search(
        space, ev, latency, None, 5, settings=SearchSettings(n_initial=5, batch_size=5)
    )
    assert len(result.history) == 5 and all(0 <= acc <= 100 for _, acc, _ in result.history)
    assert np.isfinite([lat for _, _, lat in result.history]).all()
