"""Bring your own OFA network, end to end through the CLI: import a (random
weight) OFA-MobileNetV3 checkpoint -> register this CPU -> search under a
budget -> export -> the ONNX file runs; and, with the user's images, measured
accuracy on a holdout split that BN recalibration never sees."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from service.cli import app
from service.domain import devices, supernet_records
from service.runtime import Runtime
from service.settings import load_settings

pytest.importorskip("ofa")
ort = pytest.importorskip("onnxruntime")

from tests.supernets.ofa_reference import ofa_mobilenet_v3  # noqa: E402

runner = CliRunner()


def _cli(url: str, *args: str) -> Any:
    result = runner.invoke(app, ["--database-url", url, "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # progress bars go to stderr


def _ofa_checkpoint(path: Path, n_classes: int = 1000) -> Path:
    torch.manual_seed(0)
    net = ofa_mobilenet_v3(1.0, n_classes)
    # As OFA's released files are laid out.
    torch.save({"state_dict": net.state_dict()}, path)
    return path


@pytest.mark.slow
def test_import_register_search_export_onnx_without_images(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    ckpt = _ofa_checkpoint(tmp_path / "ofa_mbv3_w1.0.pth")
    row = _cli(url, "supernet", "import-ofa", "ofa", "--checkpoint", str(ckpt), "--width", "1.0")
    assert row["space_name"] == "ofa-mbv3" and row["status"] == "ready" and row["dataset"] == {}

    # The shipped ofa-mbv3 latency predictor, adapted to this CPU.
    reg = _cli(
        url, "device", "measure", "--space", "ofa-mbv3", "--name", "this-cpu",
        "--extra", "0", "--repeats", "3",
    )  # fmt: skip
    assert reg["space"] == "ofa-mbv3" and reg["version"] == 1
    with Runtime.open(load_settings(database_url=url)) as rt, rt.session() as s:
        fastest = min(
            m.latency_ms for m in devices.list_measurements(s, devices.get_device(s, "this-cpu"))
        )
        assert supernet_records.get_supernet(s, "ofa").n_classes == 1000
    budget = 1.5 * fastest

    job = _cli(url, "search", "submit", "-s", "ofa", "-d", "this-cpu", "-b", f"{budget:.4f}")
    runner.invoke(app, ["--database-url", url, "worker", "--max-jobs", "1", "--exit-when-idle"])
    done = _cli(url, "search", "show", str(job["id"]))
    assert done["state"] == "succeeded", done
    result = done["result"]
    # A labelled proxy: no accuracy anywhere, never called measured.
    assert result["answer"] == "proxy" and "PROXY ANSWER" in result["message"]
    assert result["n_evaluations"] == 0
    best = result["best"]
    assert best is not None and best["accuracy"] is None and best["accuracy_source"] == "none"
    assert best["latency_ms"]["this-cpu"] <= budget
    assert result["verified_latency"] and result["verified_latency"][0]["measured_ms"] > 0

    out = tmp_path / "export"
    arch = json.dumps(best["arch"])
    exported = _cli(
        url, "export", "subnet", "-s", "ofa", "--arch", arch, "-o", str(out), "-f", "onnx"
    )
    manifest = json.loads((out / "hwnas-export.json").read_text())
    assert manifest["bn_recalibrated"] is False and manifest["arch"] == best["arch"]
    r = best["arch"]["r"]
    session = ort.InferenceSession(exported["files"]["onnx"], providers=["CPUExecutionProvider"])
    (logits,) = session.run(
        None, {session.get_inputs()[0].name: np.zeros((1, 3, r, r), np.float32)}
    )
    assert logits.shape == (1, 1000) and np.isfinite(logits).all()


def _image_folder(root: Path, n_classes: int, per_class: int, size: int) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(n_classes):
        # Folder names sort in a different order than they were created in.
        d = root / f"n{(n_classes - c) * 7:08d}"
        d.mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (size, size + 16, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(d / f"{i}.png")
    return root


@pytest.mark.slow
def test_import_with_images_measures_accuracy_at_128(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    ckpt = _ofa_checkpoint(tmp_path / "ofa10.pth", n_classes=10)
    images = _image_folder(tmp_path / "val", n_classes=10, per_class=5, size=128)
    row = _cli(
        url, "supernet", "import-ofa", "ofa10", "--checkpoint", str(ckpt), "--classes", "10",
        "--dataset", f"folder:{images}", "--image-size", "128",
    )  # fmt: skip
    spec = row["dataset"]
    assert spec["normalization"] == "imagenet" and spec["crop_fraction"] == 0.875

    from supernets.data import IMAGENET_MEAN, load_dataset

    data = load_dataset(spec)
    assert data.class_names == tuple(sorted(p.name for p in images.iterdir()))
    assert data.mean == pytest.approx(IMAGENET_MEAN)
    assert set(data.train_index).isdisjoint(data.holdout_index)
    assert data.n_holdout > 0 and data.train_x.shape[-1] == 128

    arch = {"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": 128}
    evals = _cli(url, "supernet", "eval", "ofa10", "--arch", json.dumps(arch), "--bn-images", "8")
    assert evals[0]["resolution"] == 128 and 0.0 <= evals[0]["accuracy"] <= 100.0  # percent
    assert evals[0]["n_holdout"] == data.n_holdout

    # A folder with a class missing would shift every label after it.
    (images / "extra-class").mkdir()
    bad = runner.invoke(
        app,
        ["--database-url", url, "supernet", "import-ofa", "other", "--checkpoint", str(ckpt),
         "--classes", "10", "--dataset", f"folder:{images}"],
    )  # fmt: skip
    assert bad.exit_code == 1 and "11 classes but the network has 10 outputs" in bad.output


@pytest.mark.slow
def test_w12_gets_its_own_space_and_device_model(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    torch.manual_seed(0)
    path = tmp_path / "w12.pth"
    torch.save({"state_dict": ofa_mobilenet_v3(1.2, 10).state_dict()}, path)
    base = ["--database-url", url]
    wrong = runner.invoke(
        app, [*base, "supernet", "import-ofa", "w", "--checkpoint", str(path), "--classes", "10"]
    )
    assert wrong.exit_code == 1 and "is not width_mult 1.0" in wrong.output
    row = _cli(
        url, "supernet", "import-ofa", "w12", "--checkpoint", str(path), "--width", "1.2",
        "--classes", "10",
    )  # fmt: skip
    assert row["space_name"] == "ofa-mbv3-w1.2" and row["space_config"]["width_mult"] == 1.2
    # No images: accuracy cannot be measured, and the error says what to do.
    evaluate = runner.invoke(app, [*base, "supernet", "eval", "w12", "--extremes"])
    assert evaluate.exit_code == 1 and "imported without images" in evaluate.output
    assert "--dataset folder:PATH" in evaluate.output
    # A w1.0 device model does not serve the w1.2 space ...
    _cli(url, "device", "measure", "--space", "ofa-mbv3", "--name", "cpu", "--extra", "0",
         "--repeats", "3")  # fmt: skip
    search = runner.invoke(app, [*base, "search", "submit", "-s", "w12", "-d", "cpu", "-b", "5"])
    assert search.exit_code == 1 and "no latency model for space 'ofa-mbv3-w1.2'" in search.output
    # ... a registration for the w1.2 space (measuring w1.2 networks) does.
    reg = _cli(url, "device", "measure", "--space", "ofa-mbv3-w1.2", "--name", "cpu",
               "--extra", "0", "--repeats", "3")  # fmt: skip
    assert reg["space"] == "ofa-mbv3-w1.2"
    with Runtime.open(load_settings(database_url=url)) as rt, rt.session() as s:
        rows = devices.list_measurements(s, devices.get_device(s, "cpu"))
        fastest = min(r.latency_ms for r in rows if r.space_name == "ofa-mbv3-w1.2")
    job = _cli(url, "search", "submit", "-s", "w12", "-d", "cpu", "-b", f"{1.5 * fastest:.4f}")
    runner.invoke(app, [*base, "worker", "--max-jobs", "1", "--exit-when-idle"])
    result = _cli(url, "search", "show", str(job["id"]))["result"]
    assert result["answer"] == "proxy" and result["best"] is not None
