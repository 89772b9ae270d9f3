"""One accuracy scale: every library path that produces an accuracy gives percent.

Each path is checked against an accuracy computed here by hand (count the
correct predictions, times 100 over the count), so a path that returned a
fraction -- or a percent of a percent -- fails.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import numpy as np
import pytest
import torch

from nas import SearchSettings, TabularEvaluator, macs_and_params, run_search
from nas.evaluators import SupernetEvaluator
from supernets import (
    ImageDataset,
    OFAArch,
    calibrated_subnet,
    evaluate_accuracy,
    evaluate_subnet,
    get_space,
    load_dataset,
)
from supernets.data import resize_all
from supernets.schedules import deps_schedule
from supernets.spaces import OFAMobileNetV3Space
from supernets.train import TrainConfig, load_supernet, train_supernet


@pytest.fixture(scope="module")
def small() -> ImageDataset:
    return load_dataset("digits").subset(n_train=96, n_holdout=60)


def _by_hand(model: torch.nn.Module, data: ImageDataset, resolution: int) -> float:
    with torch.no_grad():
        pred = model.eval()(resize_all(data.holdout_x, resolution)).argmax(dim=1)
    return 100.0 * float((pred == data.holdout_y).float().mean())


def test_every_library_accuracy_is_percent(small: ImageDataset, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    space = get_space("ofa-mbv3-tiny")
    assert isinstance(space, OFAMobileNetV3Space)
    # A briefly trained supernet, so that accuracies are well above 1 %.
    schedule = deps_schedule(space, epochs=2, lr=0.05)
    config = TrainConfig(
        batch_size=16, max_steps_per_epoch=4, eval_after_phase=True, eval_calibration_images=32
    )
    train_supernet(space, small, schedule, tmp_path, config=config)
    _, net, _ = load_supernet(tmp_path)
    arch = space.min_arch()  # r32: the after-phase check measures it too

    # supernets.evaluate_accuracy and evaluate_subnet (and its dict form).
    subnet = calibrated_subnet(net, arch, small, n_calibration=32)
    expected = _by_hand(subnet, small, arch.r)
    assert expected > 1.0  # the check below can tell percent from a fraction
    assert evaluate_accuracy(subnet, small.holdout_x, small.holdout_y, arch.r) == pytest.approx(
        expected
    )
    ev = evaluate_subnet(net, arch, small, n_calibration=32)
    assert ev.accuracy == pytest.approx(expected)
    assert ev.to_dict()["accuracy"] == pytest.approx(expected)

    # The training manifest's after-phase checks (rounded to 3 decimals).
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    last = manifest["phases"][-1]
    assert last[f"accuracy_min_r{arch.r}"] == pytest.approx(expected, abs=1e-3)

    # nas: the supernet evaluator, and what the search loop records from it.
    evaluator = SupernetEvaluator(net, small, n_calibration=32)
    assert evaluator(arch) == pytest.approx(expected)

    def latency(a: object) -> float:
        return float(macs_and_params(space, [a], n_classes=10).macs[0] / 1e6)

    result = run_search(
        space, evaluator, latency, None, 5, settings=SearchSettings(n_initial=5, batch_size=5)
    )
    for a, acc, _ in result.history:
        ofa_arch = cast(OFAArch, a)
        assert acc == pytest.approx(
            evaluate_subnet(net, ofa_arch, small, n_calibration=32).accuracy
        )

    # nas: the tabular evaluator (NAS-Bench-201's CIFAR-10 table is in percent).
    tab = TabularEvaluator()
    accs = tab.all_accuracy
    assert 90.0 < float(np.max(accs)) <= 100.0 and float(np.min(accs)) >= 0.0
