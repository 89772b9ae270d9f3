"""Saving and exporting static subnets.

A subnet directory holds ``config.json`` (the :class:`MobileNetV3Subnet`
config: block shapes, resolution, provenance -- and ``preprocessing``, the
input contract of :class:`~supernets.preprocessing.Preprocessing`) and
``weights.pt`` (its state_dict); :func:`load_subnet` rebuilds the network
from those two files alone, without the supernet. TorchScript and ONNX files
are written next to them by :func:`export_subnet`; the ONNX model carries the
same preprocessing in its ``metadata_props``, so a runtime that has only the
``.onnx`` file still knows how to feed it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from supernets.data import ImageDataset
from supernets.evaluate import DEFAULT_CALIBRATION_IMAGES, calibrated_subnet
from supernets.networks import MobileNetV3Subnet, OFAMobileNetV3, extract_subnet
from supernets.preprocessing import Preprocessing
from supernets.progress import ProgressCallback, ignore_progress
from supernets.spaces import OFAArch

__all__ = [
    "EXPORT_FORMATS",
    "ONNX_EXPORTER",
    "ONNX_OPSET",
    "export_onnx",
    "export_subnet",
    "export_torchscript",
    "load_preprocessing",
    "load_subnet",
    "onnx_from_module",
    "save_subnet",
]

EXPORT_FORMATS = ("state_dict", "torchscript", "onnx")
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.pt"
TORCHSCRIPT_FILE = "subnet.torchscript.pt"
ONNX_FILE = "subnet.onnx"


def _default_preprocessing(subnet: MobileNetV3Subnet) -> Preprocessing:
    """What is known without the dataset: size and layout, not the normalisation."""
    return Preprocessing(input_size=subnet.resolution, mean=None, std=None)


def _write_config(
    subnet: MobileNetV3Subnet, out: Path, preprocessing: Preprocessing | None
) -> Path:
    config = {k: v for k, v in subnet.config.items() if k != "preprocessing"}
    pre = preprocessing or _default_preprocessing(subnet)
    config["preprocessing"] = pre.to_dict()
    path = out / CONFIG_FILE
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def save_subnet(
    subnet: MobileNetV3Subnet,
    directory: str | os.PathLike[str],
    *,
    preprocessing: Preprocessing | None = None,
) -> Path:
    """Write ``config.json`` (with ``preprocessing``) + ``weights.pt`` into
    ``directory``; returns the directory."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    _write_config(subnet, out, preprocessing)
    state = {k: v.detach().cpu() for k, v in subnet.state_dict().items()}
    torch.save(state, out / WEIGHTS_FILE)
    return out


def load_preprocessing(directory: str | os.PathLike[str]) -> Preprocessing:
    """The input contract recorded in an export directory's ``config.json``."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise ValueError(f"{str(directory)!r} holds no exported subnet (no {CONFIG_FILE})")
    config = json.loads(path.read_text())
    if "preprocessing" not in config:
        raise ValueError(f"{str(path)!r} records no preprocessing (exported by an older hwnas)")
    return Preprocessing.from_dict(config["preprocessing"])


def load_subnet(
    directory: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> MobileNetV3Subnet:
    """Rebuild a subnet saved by :func:`save_subnet` (eval mode); no supernet needed."""
    src = Path(directory)
    config = json.loads((src / CONFIG_FILE).read_text())
    config.pop("preprocessing", None)  # the input contract, not the network
    subnet = MobileNetV3Subnet(config)
    state = torch.load(src / WEIGHTS_FILE, map_location=map_location, weights_only=True)
    subnet.load_state_dict(state, strict=True)
    return subnet.to(map_location).eval()


def _example_input(subnet: MobileNetV3Subnet, batch: int = 1) -> torch.Tensor:
    device = next(subnet.parameters()).device
    r = subnet.resolution
    return torch.randn(batch, 3, r, r, device=device)


def export_torchscript(subnet: MobileNetV3Subnet, path: str | os.PathLike[str]) -> Path:
    """Trace the subnet (eval mode) to a TorchScript file. The network has no
    data-dependent control flow, so tracing is exact; any batch size works."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    subnet = subnet.eval()
    with warnings.catch_warnings():
        # torch.jit is deprecated in favour of torch.export, but TorchScript is
        # still what many deployment runtimes (and this product's users) load.
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        with torch.no_grad():
            traced = torch.jit.trace(subnet, _example_input(subnet, 2))
        torch.jit.save(traced, str(out))
    return out


#: The ONNX opset of every ONNX file hwnas writes.
ONNX_OPSET = 18
#: How every ONNX file hwnas writes is made, recorded in its ``metadata_props``
#: under ``exporter``: deployed subnets, the reference models a device measures
#: for its latency model, search verification candidates and networks timed
#: under ``onnxruntime-cpu`` all come from :func:`onnx_from_module`, so that a
#: latency measured on one of them is a latency of the graph that is deployed.
ONNX_EXPORTER = f"torch.onnx.export(dynamo=True, opset_version={ONNX_OPSET})"


@contextlib.contextmanager
def _quiet_onnx_registry() -> Iterator[None]:
    """The exporter logs a warning for every torchvision operator it cannot
    register on every call; torchvision is not a dependency, so that is noise
    (silenced for the call, then the logger is as it was)."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def onnx_from_module(
    module: torch.nn.Module,
    path: str | os.PathLike[str],
    sample_shape: Sequence[int],
    *,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """The one ONNX exporter: ``module`` (eval mode) to ``path`` with input
    ``input`` of shape ``(batch, *sample_shape)``, a dynamic batch size, and
    output ``logits``; ``metadata`` and ``exporter`` go into ``metadata_props``.

    It is the torch.export-based exporter (the default since torch 2.9, needs
    onnxscript): slower than the TorchScript one, which is why the packages
    built from it are cached (see ``service.orchestration.registration``).
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    device = next(module.parameters()).device
    example = (torch.randn(2, *(int(v) for v in sample_shape), device=device),)
    with warnings.catch_warnings(), torch.no_grad(), _quiet_onnx_registry():
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        torch.onnx.export(
            module,
            example,
            str(out),
            dynamo=True,
            input_names=["input"],
            output_names=["logits"],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            opset_version=ONNX_OPSET,
            external_data=False,
            verbose=False,
        )
    _add_metadata(out, {**(metadata or {}), "exporter": ONNX_EXPORTER})
    return out


def export_onnx(
    subnet: MobileNetV3Subnet,
    path: str | os.PathLike[str],
    *,
    preprocessing: Preprocessing | None = None,
) -> Path:
    """Export a subnet to ONNX with :func:`onnx_from_module`: input ``input`` of
    shape ``(batch, 3, r, r)`` with the subnet's fixed resolution ``r`` and a
    dynamic batch size; output ``logits``. ``preprocessing`` (default: size
    and layout only) goes into the model's ``metadata_props``, one key per field.
    """
    pre = preprocessing or _default_preprocessing(subnet)
    r = subnet.resolution
    return onnx_from_module(subnet, path, (3, r, r), metadata=pre.metadata_props())


def _add_metadata(path: Path, props: Mapping[str, str]) -> None:
    import onnx

    model = onnx.load(str(path))
    kept = [p for p in model.metadata_props if p.key not in props]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    tmp = path.with_name(path.name + ".tmp")
    onnx.save(model, str(tmp))
    os.replace(tmp, path)


def export_subnet(
    supernet: OFAMobileNetV3,
    arch: OFAArch | Mapping[str, Any] | str,
    directory: str | os.PathLike[str],
    *,
    dataset: ImageDataset | None = None,
    n_calibration: int = DEFAULT_CALIBRATION_IMAGES,
    formats: Sequence[str] = EXPORT_FORMATS,
    preprocessing: Preprocessing | None = None,
    on_progress: ProgressCallback = ignore_progress,
) -> dict[str, Path]:
    """Extract ``arch`` and write it to ``directory`` in each of ``formats``.

    With a ``dataset`` the subnet's BN statistics are recalibrated on
    ``n_calibration`` of its training images first -- do this for any subnet
    that will be deployed; without one the supernet's running statistics are
    kept as they are. The input contract (``preprocessing``; by default the
    dataset's normalisation and class names, or only size and layout without
    a dataset) is written to ``config.json`` -- always -- and into the ONNX
    model. Returns ``{"config": ..., "state_dict": ..., "torchscript": ...,
    "onnx": ...}`` (the config and the requested formats).

    ``on_progress`` (:mod:`supernets.progress`) hears one unit per stage:
    the subnet's extraction (with BN recalibration when there is a dataset),
    then each requested format in the order of :data:`EXPORT_FORMATS`.
    """
    unknown = sorted(set(formats) - set(EXPORT_FORMATS))
    if unknown:
        raise ValueError(f"unknown export format(s) {unknown}; known: {list(EXPORT_FORMATS)}")
    stages = [f for f in EXPORT_FORMATS if f in formats]
    total = 1 + len(stages)
    if dataset is not None:
        on_progress(0, total, f"recalibrating BN on {n_calibration} images")
        subnet = calibrated_subnet(supernet, arch, dataset, n_calibration=n_calibration)
    else:
        on_progress(0, total, "extracting the subnet")
        subnet = extract_subnet(supernet, arch).eval()
    subnet = subnet.cpu()
    if preprocessing is None and dataset is not None:
        preprocessing = Preprocessing.from_dataset(dataset, subnet.resolution)
    if preprocessing is not None and preprocessing.input_size != subnet.resolution:
        raise ValueError(
            f"preprocessing input_size {preprocessing.input_size} does not match the "
            f"subnet's resolution {subnet.resolution}"
        )
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {"config": _write_config(subnet, out, preprocessing)}
    writers: dict[str, Callable[[], Path]] = {
        "state_dict": lambda: save_subnet(subnet, out, preprocessing=preprocessing) / WEIGHTS_FILE,
        "torchscript": lambda: export_torchscript(subnet, out / TORCHSCRIPT_FILE),
        "onnx": lambda: export_onnx(subnet, out / ONNX_FILE, preprocessing=preprocessing),
    }
    for done, fmt in enumerate(stages, start=1):
        on_progress(done, total, f"writing {fmt}")
        paths[fmt] = writers[fmt]()
    on_progress(total, total, f"exported to {out}")
    return paths
