"""OFA's own network classes, for the import tests (from the ``ofa`` package).

``ofa``'s network modules import ``torchvision`` for their data loaders only;
torchvision from PyPI cannot be installed next to our torch build, so a
minimal stand-in is put in ``sys.modules`` before importing them. Nothing in
it is ever called by the networks (a call would raise).
"""

from __future__ import annotations

import sys
import types
from typing import Any

__all__ = ["ofa_mobilenet_v3"]


class _Unavailable:
    """Base class for torchvision's transforms that OFA subclasses at import."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("torchvision is not available in this test environment")


def _install_torchvision_stand_in() -> None:
    if "torchvision" in sys.modules:
        return
    root = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    functional = types.ModuleType("torchvision.transforms.functional")
    datasets = types.ModuleType("torchvision.datasets")
    transforms.RandomResizedCrop = _Unavailable  # type: ignore[attr-defined]
    transforms.functional = functional  # type: ignore[attr-defined]
    root.transforms = transforms  # type: ignore[attr-defined]
    root.datasets = datasets  # type: ignore[attr-defined]
    for module in (root, transforms, functional, datasets):
        sys.modules[module.__name__] = module


def ofa_mobilenet_v3(width_mult: float, n_classes: int = 1000) -> Any:
    """OFA's ``OFAMobileNetV3`` as released (k357, e346, d234), random weights."""
    _install_torchvision_stand_in()
    from ofa.imagenet_classification.elastic_nn.networks import OFAMobileNetV3

    return OFAMobileNetV3(
        n_classes=n_classes,
        dropout_rate=0.0,
        width_mult=width_mult,
        ks_list=[3, 5, 7],
        expand_ratio_list=[3, 4, 6],
        depth_list=[2, 3, 4],
    )
