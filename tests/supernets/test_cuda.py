"""The CUDA path: supernet training with and without ``amp`` mixed precision,
latency measurement with the ``torch-cuda`` backend, and export of a subnet
trained on the GPU. Marked ``cuda``: skipped without a GPU (tests/conftest.py).

Run on a GPU machine against its own torch build, e.g. with the project on
``PYTHONPATH``: ``PYTHONPATH=. python -m pytest -m cuda tests``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from predictors.latency import DeviceSpec
from predictors.latency.measure import measure_latency
from supernets import (
    export_subnet,
    extract_subnet,
    load_dataset,
    load_supernet,
    train_supernet,
)
from supernets.data import ImageDataset
from supernets.schedules import progressive_shrinking
from supernets.spaces import OFAMobileNetV3Space
from supernets.train import TrainConfig


@pytest.fixture(scope="module")
def small_digits() -> ImageDataset:
    return load_dataset("digits").subset(n_train=128, n_holdout=40)


def test_amp_on_a_cpu_run_is_an_error(
    tiny_space: OFAMobileNetV3Space, small_digits: ImageDataset, tmp_path: Path
) -> None:
    config = TrainConfig(batch_size=16, max_steps_per_epoch=1, device="cpu", amp=True)
    schedule = progressive_shrinking(tiny_space, epochs=6)
    with pytest.raises(ValueError, match=r"amp .*needs a CUDA device; this run trains on cpu"):
        train_supernet(tiny_space, small_digits, schedule, tmp_path / "run", config=config)
    assert not (tmp_path / "run" / "manifest.json").exists()
    # amp changes how, not what, is trained: not part of the run's identity.
    from supernets.train import _run_identity

    ids = [
        _run_identity(tiny_space, small_digits, schedule, TrainConfig(amp=a))["train_config"]
        for a in (False, True)
    ]
    assert ids[0] == ids[1] and "amp" not in ids[0]


@pytest.mark.cuda
@pytest.mark.parametrize("amp", [False, True])
def test_training_on_cuda_with_and_without_amp(
    tiny_space: OFAMobileNetV3Space, small_digits: ImageDataset, tmp_path: Path, amp: bool
) -> None:
    config = TrainConfig(
        batch_size=32, max_steps_per_epoch=3, eval_after_phase=True,
        eval_calibration_images=64, device="cuda", amp=amp,
    )  # fmt: skip
    schedule = progressive_shrinking(tiny_space, epochs=6)
    final = train_supernet(tiny_space, small_digits, schedule, tmp_path, config=config)
    _, net, meta = load_supernet(final)
    assert meta["complete"]
    assert all(torch.isfinite(p).all() for p in net.state_dict().values() if p.is_floating_point())
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    last = manifest["phases"][-1]
    assert np.isfinite(last["final_loss"]) and last["images_per_s"] > 0
    accuracies = [v for k, v in last.items() if k.startswith("accuracy_")]
    assert accuracies and all(0.0 <= a <= 1.0 for a in accuracies)


@pytest.mark.cuda
def test_torch_cuda_measurement_and_export_of_a_gpu_subnet(
    tiny_space: OFAMobileNetV3Space, small_digits: ImageDataset, tmp_path: Path
) -> None:
    schedule = progressive_shrinking(tiny_space, epochs=6)
    config = TrainConfig(
        batch_size=32, max_steps_per_epoch=2, eval_after_phase=False, device="cuda", amp=True
    )
    final = train_supernet(tiny_space, small_digits, schedule, tmp_path / "run", config=config)
    _, net, _ = load_supernet(final, map_location="cuda")
    arch = tiny_space.min_arch()
    paths = export_subnet(
        net, arch, tmp_path / "export", dataset=small_digits, n_calibration=64,
        formats=("state_dict", "torchscript", "onnx"),
    )  # fmt: skip
    assert all(Path(p).is_file() for p in paths.values())
    scripted = torch.jit.load(str(paths["torchscript"]))
    assert scripted(torch.randn(1, 3, arch.r, arch.r)).shape == (1, 10)

    spec = DeviceSpec(backend="torch-cuda", threads=1, batch=4)
    m = measure_latency(extract_subnet(net, arch), (3, arch.r, arch.r), spec, warmup=3, repeats=5)
    assert m.backend == "torch-cuda" and m.median_ms > 0
    assert m.gpu and torch.cuda.get_device_name() in m.gpu
