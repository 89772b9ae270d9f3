"""BN recalibration and holdout accuracy of subnets.

A subnet inherits BatchNorm running statistics that were accumulated over
many different subnets and resolutions, so they fit none of them. Before any
accuracy is measured the statistics are recomputed on training images at the
subnet's resolution (OFA: 2,000 images, batch 200, per-batch means and
variances averaged equally -- which is what BatchNorm's ``momentum=None``
cumulative average does). Accuracy is then measured on the holdout split,
which neither training nor recalibration ever sees.

Accuracy is in percent (0-100) everywhere in hwnas -- here, in the search
loop, the predictors' training data, the database, the CLI and the API -- so
that numbers from different sources can be compared and stored side by side.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from supernets.data import ImageDataset, iterate_batches, resize_all
from supernets.networks import MobileNetV3Subnet, OFAMobileNetV3, extract_subnet
from supernets.spaces import OFAArch

__all__ = [
    "DEFAULT_CALIBRATION_IMAGES",
    "SubnetEvaluation",
    "calibrated_subnet",
    "calibration_images",
    "evaluate_accuracy",
    "evaluate_subnet",
    "recalibrate_bn",
]

DEFAULT_CALIBRATION_IMAGES = 2000


@torch.no_grad()
def recalibrate_bn(model: nn.Module, images: torch.Tensor, batch_size: int = 200) -> nn.Module:
    """Recompute every BatchNorm's running mean/var on ``images`` (already at the
    subnet's resolution); the model is returned in eval mode.

    Works for static subnets and, after ``set_active``, for the supernet itself
    (its elastic BN slices the same way as in training).
    """
    if images.shape[0] == 0:
        raise ValueError("BN recalibration needs at least one image")
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the batches below
    device = _device_of(model)
    model.train()
    try:
        for start in range(0, images.shape[0], batch_size):
            model(images[start : start + batch_size].to(device))
    finally:
        for bn, momentum in zip(bns, momenta, strict=True):
            bn.momentum = momentum
        model.eval()
    return model


@torch.no_grad()
def evaluate_accuracy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    resolution: int,
    batch_size: int = 256,
) -> float:
    """Top-1 accuracy of ``model`` in eval mode, in percent (0-100)."""
    if y.shape[0] == 0:
        raise ValueError("accuracy needs at least one image")
    device = _device_of(model)
    model.eval()
    correct = 0
    for xb, yb in iterate_batches(x, y, batch_size, resolution):
        correct += int((model(xb.to(device)).argmax(dim=1).cpu() == yb).sum())
    return 100.0 * correct / int(y.shape[0])


def calibration_images(
    dataset: ImageDataset,
    resolution: int,
    n_images: int = DEFAULT_CALIBRATION_IMAGES,
    seed: int = 0,
) -> torch.Tensor:
    """A fixed random subset of the *training* split, resized to ``resolution``
    (all training images when the split is smaller than ``n_images``)."""
    if n_images < 1:
        raise ValueError(f"n_images must be >= 1, got {n_images}")
    perm = np.random.default_rng(seed).permutation(dataset.n_train)[:n_images]
    x = dataset.train_x[torch.from_numpy(np.sort(perm))]
    return resize_all(x, resolution)


@dataclass(frozen=True)
class SubnetEvaluation:
    """One real measurement of a subnet's accuracy (holdout, after BN recalibration)."""

    arch: OFAArch
    #: Holdout top-1 accuracy in percent (0-100).
    accuracy: float
    n_holdout: int
    n_calibration: int
    resolution: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "arch": self.arch.to_dict(),
            "accuracy": self.accuracy,
            "n_holdout": self.n_holdout,
            "n_calibration": self.n_calibration,
            "resolution": self.resolution,
        }


def calibrated_subnet(
    supernet: OFAMobileNetV3,
    arch: OFAArch | Mapping[str, Any] | str,
    dataset: ImageDataset,
    *,
    n_calibration: int = DEFAULT_CALIBRATION_IMAGES,
    batch_size: int = 200,
    seed: int = 0,
) -> MobileNetV3Subnet:
    """Extract ``arch`` and recalibrate its BN on ``n_calibration`` training
    images at ``arch.r``; returned in eval mode, ready to measure or export.
    The supernet is not modified."""
    arch = supernet.space.validate(arch)
    subnet = extract_subnet(supernet, arch)
    recalibrate_bn(subnet, calibration_images(dataset, arch.r, n_calibration, seed), batch_size)
    return subnet


def evaluate_subnet(
    supernet: OFAMobileNetV3,
    arch: OFAArch | Mapping[str, Any] | str,
    dataset: ImageDataset,
    *,
    n_calibration: int = DEFAULT_CALIBRATION_IMAGES,
    batch_size: int = 200,
    seed: int = 0,
) -> SubnetEvaluation:
    """Holdout accuracy (percent, 0-100) of subnet ``arch`` with inherited
    weights, after BN recalibration on ``n_calibration`` training images (see
    :func:`calibrated_subnet`)."""
    arch = supernet.space.validate(arch)
    subnet = calibrated_subnet(
        supernet, arch, dataset, n_calibration=n_calibration, batch_size=batch_size, seed=seed
    )
    acc = evaluate_accuracy(subnet, dataset.holdout_x, dataset.holdout_y, arch.r)
    n_calib = min(n_calibration, dataset.n_train)
    return SubnetEvaluation(arch, acc, dataset.n_holdout, n_calib, arch.r)


def _device_of(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")
