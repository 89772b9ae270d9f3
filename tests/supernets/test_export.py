"""Saving, reloading and exporting static subnets (TorchScript, ONNX)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from supernets import export_subnet, extract_subnet, load_subnet, save_subnet
from supernets.export import export_onnx, export_torchscript
from supernets.networks import MobileNetV3Subnet, OFAMobileNetV3


@pytest.fixture(scope="module")
def subnet_and_input(tiny_supernet: OFAMobileNetV3) -> tuple[MobileNetV3Subnet, torch.Tensor]:
    arch = tiny_supernet.space.sample(np.random.default_rng(3))
    sub = extract_subnet(tiny_supernet, arch).eval()
    return sub, torch.randn(4, 3, arch.r, arch.r)


def test_save_and_load_without_supernet(subnet_and_input, tmp_path: Path) -> None:
    sub, x = subnet_and_input
    save_subnet(sub, tmp_path / "sub")
    config = json.loads((tmp_path / "sub" / "config.json").read_text())
    assert config["arch"] == sub.config["arch"]
    assert config["space"]["name"] == "ofa-mbv3-tiny"
    loaded = load_subnet(tmp_path / "sub")
    with torch.no_grad():
        assert torch.equal(loaded(x), sub(x))


def test_torchscript_matches(subnet_and_input, tmp_path: Path) -> None:
    sub, x = subnet_and_input
    path = export_torchscript(sub, tmp_path / "sub.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.load(str(path))
    with torch.no_grad():
        assert (scripted(x) - sub(x)).abs().max().item() <= 1e-5
        # Traced without batch-size specialisation.
        assert scripted(x[:1]).shape == (1, sub.config["n_classes"])


@pytest.mark.slow
def test_onnx_runtime_matches_torch(subnet_and_input, tmp_path: Path) -> None:
    sub, x = subnet_and_input
    path = export_onnx(sub, tmp_path / "sub.onnx")
    onnx.checker.check_model(onnx.load(str(path)))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.name == "input"
    assert inp.shape[1:] == [3, sub.resolution, sub.resolution]
    for batch in (x, x[:1]):
        (out,) = session.run(None, {"input": batch.numpy()})
        with torch.no_grad():
            ref = sub(batch).numpy()
        assert np.abs(out - ref).max() <= 1e-5


def test_export_subnet_writes_every_format(tiny_supernet: OFAMobileNetV3, tmp_path: Path) -> None:
    arch = tiny_supernet.space.min_arch()
    paths = export_subnet(
        tiny_supernet, arch, tmp_path / "out", formats=("state_dict", "torchscript")
    )
    assert set(paths) == {"config", "state_dict", "torchscript"}
    assert all(p.is_file() for p in paths.values())
    assert load_subnet(tmp_path / "out").config["arch"] == arch.to_dict()
    with pytest.raises(ValueError, match="unknown export format"):
        export_subnet(tiny_supernet, arch, tmp_path / "bad", formats=("tflite",))
