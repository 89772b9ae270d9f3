"""Search spaces, elastic layers, the OFA-MobileNetV3 supernet and its training.

Never talks to a database or HTTP: usable as a plain library.

The search spaces are imported eagerly; everything that needs torch is
imported on first use (PEP 562), so ``from supernets import get_space`` -- and
a CLI's ``--help`` -- stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from supernets.progress import ProgressCallback
from supernets.spaces import (
    Arch,
    NB201Arch,
    NB201Space,
    OFAArch,
    OFAMobileNetV3Space,
    SearchSpace,
    available_spaces,
    get_space,
    register_space,
    space_from_config,
)

if TYPE_CHECKING:
    from supernets.data import DatasetSpec, ImageDataset, load_dataset
    from supernets.evaluate import (
        SubnetEvaluation,
        calibrated_subnet,
        evaluate_accuracy,
        evaluate_subnet,
        recalibrate_bn,
    )
    from supernets.export import (
        ONNX_OPSET,
        export_onnx,
        export_subnet,
        export_torchscript,
        load_preprocessing,
        load_subnet,
        onnx_from_module,
        save_subnet,
    )
    from supernets.networks import (
        MobileNetV3Subnet,
        OFAMobileNetV3,
        build_subnet,
        build_supernet,
        extract_subnet,
    )
    from supernets.ofa_import import import_ofa, save_imported
    from supernets.preprocessing import Preprocessing
    from supernets.schedules import (
        Phase,
        available_schedules,
        deps_schedule,
        get_schedule,
        progressive_shrinking,
    )
    from supernets.train import (
        ProgressEvent,
        TrainConfig,
        load_supernet,
        read_manifest,
        train_subnet,
        train_supernet,
    )

_LAZY: dict[str, str] = {
    "DatasetSpec": "supernets.data",
    "ImageDataset": "supernets.data",
    "load_dataset": "supernets.data",
    "SubnetEvaluation": "supernets.evaluate",
    "calibrated_subnet": "supernets.evaluate",
    "evaluate_accuracy": "supernets.evaluate",
    "evaluate_subnet": "supernets.evaluate",
    "recalibrate_bn": "supernets.evaluate",
    "ONNX_OPSET": "supernets.export",
    "export_onnx": "supernets.export",
    "export_subnet": "supernets.export",
    "export_torchscript": "supernets.export",
    "load_preprocessing": "supernets.export",
    "load_subnet": "supernets.export",
    "onnx_from_module": "supernets.export",
    "save_subnet": "supernets.export",
    "MobileNetV3Subnet": "supernets.networks",
    "OFAMobileNetV3": "supernets.networks",
    "build_subnet": "supernets.networks",
    "build_supernet": "supernets.networks",
    "extract_subnet": "supernets.networks",
    "import_ofa": "supernets.ofa_import",
    "save_imported": "supernets.ofa_import",
    "Preprocessing": "supernets.preprocessing",
    "Phase": "supernets.schedules",
    "available_schedules": "supernets.schedules",
    "deps_schedule": "supernets.schedules",
    "get_schedule": "supernets.schedules",
    "progressive_shrinking": "supernets.schedules",
    "ProgressEvent": "supernets.train",
    "TrainConfig": "supernets.train",
    "load_supernet": "supernets.train",
    "read_manifest": "supernets.train",
    "train_subnet": "supernets.train",
    "train_supernet": "supernets.train",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'supernets' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "ONNX_OPSET",
    "Arch",
    "DatasetSpec",
    "ImageDataset",
    "MobileNetV3Subnet",
    "NB201Arch",
    "NB201Space",
    "OFAArch",
    "OFAMobileNetV3",
    "OFAMobileNetV3Space",
    "Phase",
    "Preprocessing",
    "ProgressCallback",
    "ProgressEvent",
    "SearchSpace",
    "SubnetEvaluation",
    "TrainConfig",
    "available_schedules",
    "available_spaces",
    "build_subnet",
    "build_supernet",
    "calibrated_subnet",
    "deps_schedule",
    "evaluate_accuracy",
    "evaluate_subnet",
    "export_onnx",
    "export_subnet",
    "export_torchscript",
    "extract_subnet",
    "get_schedule",
    "get_space",
    "import_ofa",
    "load_dataset",
    "load_preprocessing",
    "load_subnet",
    "load_supernet",
    "onnx_from_module",
    "progressive_shrinking",
    "read_manifest",
    "recalibrate_bn",
    "register_space",
    "save_imported",
    "save_subnet",
    "space_from_config",
    "train_subnet",
    "train_supernet",
]
