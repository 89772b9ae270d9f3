"""BN recalibration on training images and holdout accuracy."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from supernets import (
    ImageDataset,
    evaluate_accuracy,
    evaluate_subnet,
    extract_subnet,
    load_dataset,
    recalibrate_bn,
)
from supernets.data import resize_batch
from supernets.evaluate import DEFAULT_CALIBRATION_IMAGES, calibration_images
from supernets.networks import OFAMobileNetV3


@pytest.fixture(scope="module")
def digits() -> ImageDataset:
    return load_dataset("digits")


def test_calibration_images_come_from_the_training_split(digits: ImageDataset) -> None:
    assert DEFAULT_CALIBRATION_IMAGES == 2000
    imgs = calibration_images(digits, 40, n_images=50, seed=3)
    assert imgs.shape == (50, 3, 40, 40)
    train = resize_batch(digits.train_x, 40)
    # Every calibration image is one of the training images.
    flat_train = train.flatten(1)
    for img in imgs[:5]:
        assert (flat_train - img.flatten()).abs().amax(dim=1).min() < 1e-6
    # More images than the split holds: all of it, once.
    assert calibration_images(digits, 32, n_images=10_000).shape[0] == digits.n_train


def test_recalibration_gives_exact_statistics(tiny_supernet: OFAMobileNetV3) -> None:
    arch = tiny_supernet.space.sample(np.random.default_rng(5))
    sub = extract_subnet(tiny_supernet, arch)
    images = torch.randn(40, 3, arch.r, arch.r)
    recalibrate_bn(sub, images, batch_size=20)
    assert not sub.training
    with torch.no_grad():
        stem_out = sub.stem.conv(images)
    mean = stem_out.mean(dim=(0, 2, 3))
    assert sub.stem.bn.running_mean is not None
    assert torch.allclose(sub.stem.bn.running_mean, mean, atol=1e-5)


def test_recalibrating_the_supernet_equals_recalibrating_the_subnet(
    tiny_supernet: OFAMobileNetV3,
) -> None:
    net = copy.deepcopy(tiny_supernet)
    arch = net.space.sample(np.random.default_rng(11))
    sub = extract_subnet(net, arch)
    images = torch.randn(30, 3, arch.r, arch.r)
    recalibrate_bn(sub, images, batch_size=10)
    net.set_active(arch)
    recalibrate_bn(net, images, batch_size=10)  # elastic BN, momentum=None path
    x = torch.randn(4, 3, arch.r, arch.r)
    with torch.no_grad():
        assert (net(x) - sub(x)).abs().max().item() <= 1e-5
    # Momentum is restored after recalibration.
    assert all(
        m.momentum == 0.1 for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
    )


def test_evaluate_accuracy_and_subnet(digits: ImageDataset, tiny_supernet: OFAMobileNetV3) -> None:
    class Oracle(nn.Module):
        """Predicts the label encoded in the first pixel (for the test only)."""

        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return nn.functional.one_hot(x[:, 0, 0, 0].long(), 10).float()

    y = torch.arange(10).repeat(3)
    x = y.float().view(-1, 1, 1, 1).expand(-1, 3, 8, 8).contiguous()
    assert evaluate_accuracy(Oracle(), x, y, resolution=8) == 100.0  # percent
    assert evaluate_accuracy(Oracle(), x, (y + 1) % 10, resolution=8) == 0.0
    wrong_third = torch.where(torch.arange(30) < 10, (y + 1) % 10, y)
    assert evaluate_accuracy(Oracle(), x, wrong_third, resolution=8) == pytest.approx(200 / 3)

    small = digits.subset(n_train=64, n_holdout=50)
    before = {k: v.clone() for k, v in tiny_supernet.state_dict().items()}
    ev = evaluate_subnet(tiny_supernet, tiny_supernet.space.min_arch(), small, n_calibration=32)
    assert ev.n_holdout == 50 and ev.n_calibration == 32 and 0.0 <= ev.accuracy <= 100.0
    assert ev.to_dict()["arch"] == tiny_supernet.space.min_arch().to_dict()
    after = tiny_supernet.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # supernet untouched
