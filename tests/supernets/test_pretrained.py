"""Shipped supernets: the packaged file loads like any checkpoint, says how it
was built, and its subnets are far above chance on the task it was trained on."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from supernets import ImageDataset, evaluate_subnet, load_dataset
from supernets.build_pretrained import RECIPES, shrink_checkpoint
from supernets.pretrained import (
    load_pretrained_supernet,
    pretrained_supernet_path,
    pretrained_supernets,
)
from supernets.schedules import deps_schedule
from supernets.spaces import OFAMobileNetV3Space
from supernets.train import TrainConfig, load_supernet, train_supernet


def test_shrunk_checkpoint_loads_with_float16_weights_and_a_build_record(
    tiny_space: OFAMobileNetV3Space, tmp_path: Path
) -> None:
    data: ImageDataset = load_dataset("digits").subset(n_train=32, n_holdout=16)
    config = TrainConfig(batch_size=16, max_steps_per_epoch=1, eval_after_phase=False)
    final = train_supernet(
        tiny_space, data, deps_schedule(tiny_space, epochs=2), tmp_path / "r", config=config
    )
    small = shrink_checkpoint(final, tmp_path / "x.pt", {"command": "python -m supernets.launch"})
    assert small.stat().st_size < 0.6 * final.stat().st_size
    _, full_net, _ = load_supernet(final)
    _, half_net, meta = load_supernet(small)
    assert meta["build"]["command"].startswith("python -m supernets.launch")
    for (k, v), w in zip(
        full_net.state_dict().items(), half_net.state_dict().values(), strict=True
    ):
        if v.is_floating_point():
            assert w.dtype == torch.float32  # loaded back into the float32 network
            assert torch.equal(w, v.half().float()), k


def test_unknown_shipped_supernet_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no shipped supernet 'nope'"):
        pretrained_supernet_path("nope")
    assert set(pretrained_supernets()) == set(RECIPES)


@pytest.mark.slow
def test_shipped_supernet_is_trained_on_digits_hard() -> None:
    path = pretrained_supernet_path("ofa-mbv3-tiny-digits-hard")
    assert path.stat().st_size < 4_000_000  # small enough to ship in the package
    space, net, meta = load_pretrained_supernet()
    assert space.name == "ofa-mbv3-tiny" and meta["complete"]
    assert meta["dataset"]["kind"] == "digits-hard"
    assert "supernets.launch" in meta["build"]["command"]
    data = load_dataset(meta["dataset"]).subset(n_holdout=400)
    acc = evaluate_subnet(net, space.min_arch(), data, n_calibration=500).accuracy
    # Chance is 10 %; the smallest subnet scored 83.9 % (r32) on the full
    # holdout after the build (its build record), 400 images vary by a few points.
    assert acc > 70.0
