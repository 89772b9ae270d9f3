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


def test_export_subnet_reports_one_unit_per_stage(
    tiny_supernet: OFAMobileNetV3, tmp_path: Path
) -> None:
    calls: list[tuple[int, int, str]] = []
    export_subnet(
        tiny_supernet,
        tiny_supernet.space.min_arch(),
        tmp_path / "out",
        formats=("torchscript", "state_dict"),
        on_progress=lambda *c: calls.append(c),
    )
    # extraction, then the formats in EXPORT_FORMATS order, then the end
    assert [(done, total) for done, total, _ in calls] == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert [what for _, _, what in calls[:3]] == [
        "extracting the subnet",
        "writing state_dict",
        "writing torchscript",
    ]


def _bilinear_half_pixel(img: np.ndarray, size: int) -> np.ndarray:
    """The recorded resize rule, written from its description alone (numpy)."""

    def taps(n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = np.maximum((np.arange(size) + 0.5) * n_in / size - 0.5, 0.0)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (src - lo)[:, None]

    ylo, yhi, wy = taps(img.shape[0])
    xlo, xhi, wx = taps(img.shape[1])
    rows = img[ylo] * (1 - wy[..., None]) + img[yhi] * wy[..., None]
    return rows[:, xlo] * (1 - wx[None]) + rows[:, xhi] * wx[None]


def test_onnx_runs_on_a_raw_image_from_its_metadata_alone(
    tiny_supernet: OFAMobileNetV3, tmp_path: Path
) -> None:
    from supernets import load_dataset, load_preprocessing
    from supernets.data import resize_batch
    from supernets.evaluate import calibrated_subnet

    digits = load_dataset("digits").subset(n_train=200, n_holdout=20)
    arch = tiny_supernet.space.sample(np.random.default_rng(7))
    paths = export_subnet(tiny_supernet, arch, tmp_path / "out", dataset=digits, n_calibration=64)

    # config.json and the ONNX metadata hold the same contract.
    recorded = load_preprocessing(tmp_path / "out")
    assert recorded.input_size == arch.r and recorded.layout == "NCHW"
    assert recorded.mean == pytest.approx(digits.mean) and recorded.std == pytest.approx(digits.std)
    assert recorded.class_names == digits.class_names
    model = onnx.load(str(paths["onnx"]))
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["input_size"]) == arch.r
    assert json.loads(props["class_names"]) == [str(c) for c in range(10)]

    # A raw 8-bit RGB image of an arbitrary size, fed with only the metadata.
    raw = np.random.default_rng(0).integers(0, 256, size=(29, 37, 3)).astype(np.uint8)
    size = json.loads(props["input_size"])
    assert json.loads(props["resize"]) == "bilinear-half-pixel-no-antialias"
    x = _bilinear_half_pixel(raw.astype(np.float32), size) / json.loads(props["pixel_scale"])
    x = (x - np.array(json.loads(props["mean"]))) / np.array(json.loads(props["std"]))
    assert json.loads(props["layout"]) == "NCHW"
    x = x.transpose(2, 0, 1)[None].astype(np.float32)
    session = ort.InferenceSession(str(paths["onnx"]), providers=["CPUExecutionProvider"])
    (onnx_logits,) = session.run(None, {"input": x})

    # The library's prediction for the same raw image.
    subnet = calibrated_subnet(tiny_supernet, arch, digits, n_calibration=64)
    with torch.no_grad():
        lib_logits = subnet(recorded.prepare(raw)).numpy()
    # float32 rounding differs between the two paths: compare relatively.
    assert np.allclose(onnx_logits, lib_logits, rtol=1e-3, atol=1e-3)
    assert int(onnx_logits.argmax()) == int(lib_logits.argmax())

    # prepare() is the library's own normalisation: raw digits (0-16 scaled to
    # 0-255) give exactly the dataset's tensors, resized to the input size.
    from sklearn.datasets import load_digits

    raw_digits = load_digits().images[digits.holdout_index[:5]] * (255.0 / 16.0)
    expected = resize_batch(digits.holdout_x[:5], arch.r)
    assert torch.allclose(recorded.prepare(list(raw_digits)), expected, atol=1e-4)


def test_export_without_dataset_records_what_it_knows(
    tiny_supernet: OFAMobileNetV3, tmp_path: Path
) -> None:
    from supernets import Preprocessing, load_preprocessing

    arch = tiny_supernet.space.min_arch()
    export_subnet(tiny_supernet, arch, tmp_path / "o", formats=("state_dict",))
    pre = load_preprocessing(tmp_path / "o")
    assert pre.input_size == arch.r and pre.mean is None and pre.class_names is None
    with pytest.raises(ValueError, match="does not know its normalisation"):
        pre.prepare(np.zeros((8, 8, 3)))
    assert load_subnet(tmp_path / "o").config["arch"] == arch.to_dict()
    with pytest.raises(ValueError, match="input_size"):
        export_subnet(
            tiny_supernet, arch, tmp_path / "p",
            preprocessing=Preprocessing(input_size=arch.r + 4, mean=None, std=None),
        )  # fmt: skip
    with pytest.raises(ValueError, match="preprocessing format"):
        Preprocessing.from_dict({"input_size": 32})
    with pytest.raises(ValueError, match="no exported subnet"):
        load_preprocessing(tmp_path / "nothing")
