"""Datasets by spec: digits, image folder, npz; the fixed-seed holdout split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from supernets import DatasetSpec, load_dataset
from supernets.data import resize_batch


def test_digits_split_is_fixed_stratified_and_disjoint() -> None:
    a = load_dataset("digits")
    b = load_dataset(DatasetSpec())
    assert a.n_classes == 10 and a.n_train + a.n_holdout == 1797
    assert a.n_holdout == pytest.approx(0.2 * 1797, abs=1)
    assert np.array_equal(a.holdout_index, b.holdout_index)
    assert torch.equal(a.train_x, b.train_x)
    assert not set(a.train_index) & set(a.holdout_index)
    # Stratified: every class is in the holdout split in proportion.
    counts = np.bincount(a.holdout_y.numpy(), minlength=10)
    assert counts.min() >= 30
    assert a.train_x.shape[1:] == (3, 8, 8)
    assert abs(float(a.train_x.mean())) < 1e-4  # normalised with train statistics
    other = load_dataset(DatasetSpec(seed=1))
    assert not np.array_equal(other.holdout_index, a.holdout_index)


def test_spec_parse_and_round_trip(tmp_path: Path) -> None:
    spec = DatasetSpec.parse(f"npz:{tmp_path}/x.npz", holdout_fraction=0.3)
    assert spec.kind == "npz" and spec.path == f"{tmp_path}/x.npz"
    assert DatasetSpec.from_dict(spec.to_dict()) == spec
    assert DatasetSpec.parse('{"kind": "digits", "seed": 3}').seed == 3
    assert str(DatasetSpec.parse("digits")) == "digits"
    with pytest.raises(ValueError, match="kind"):
        DatasetSpec.parse("imagenet")
    with pytest.raises(ValueError, match="needs a path"):
        DatasetSpec(kind="folder")
    with pytest.raises(ValueError, match="holdout_fraction"):
        DatasetSpec(holdout_fraction=1.5)
    with pytest.raises(ValueError, match="unknown field"):
        DatasetSpec.from_dict({"kind": "digits", "size": 3})


def test_image_folder(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for c, name in enumerate(["cat", "dog", "emu"]):
        (tmp_path / name).mkdir()
        for i in range(5):
            pixels = rng.integers(0, 255, size=(20 + i, 30, 3), dtype=np.uint8)
            pixels[..., c] = 255
            Image.fromarray(pixels).save(tmp_path / name / f"{i}.png")
    (tmp_path / "notes.txt").write_text("not a class")
    ds = load_dataset(DatasetSpec(kind="folder", path=str(tmp_path), image_size=16))
    assert ds.class_names == ("cat", "dog", "emu")
    assert ds.n_train + ds.n_holdout == 15
    assert ds.train_x.shape[1:] == (3, 16, 16)
    with pytest.raises(ValueError, match="does not exist"):
        load_dataset(f"folder:{tmp_path}/missing")


def test_npz_layouts(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 10) * 7  # labels need not be 0..n-1
    arrays: dict[str, np.ndarray] = {
        "nhw": rng.integers(0, 255, size=(40, 12, 12), dtype=np.uint8),
        "nhwc": rng.random((40, 12, 12, 3)).astype(np.float32),
        "nchw": rng.random((40, 3, 12, 12)).astype(np.float32),
    }
    for name, x in arrays.items():
        np.savez(tmp_path / f"{name}.npz", x=x, y=y)
        ds = load_dataset(f"npz:{tmp_path}/{name}.npz")
        assert ds.train_x.shape[1:] == (3, 12, 12)
        assert ds.n_classes == 4 and set(ds.train_y.tolist()) == {0, 1, 2, 3}
    np.savez(tmp_path / "bad.npz", images=y)
    with pytest.raises(ValueError, match="'x' and 'y'"):
        load_dataset(f"npz:{tmp_path}/bad.npz")


def test_resize_batch() -> None:
    x = torch.randn(2, 3, 8, 8)
    assert resize_batch(x, 32).shape == (2, 3, 32, 32)
    assert resize_batch(x, 8) is x


def test_spec_paths_are_made_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    spec = DatasetSpec.parse("npz:data/x.npz")
    assert spec.path == str(tmp_path / "data" / "x.npz")


def test_imagenet_normalisation_and_centre_crop(tmp_path: Path) -> None:
    # One class: a white square centred on a black landscape image; the other
    # black; the centre crop keeps only white from the first.
    for name, fill in (("b", 0), ("a", 255)):
        (tmp_path / name).mkdir()
        for i in range(3):
            img = np.zeros((40, 80, 3), dtype=np.uint8)
            img[:, 20:60] = fill
            Image.fromarray(img).save(tmp_path / name / f"{i}.png")
    spec = DatasetSpec(
        kind="folder", path=str(tmp_path), image_size=16, normalization="imagenet",
        crop_fraction=0.875, holdout_fraction=0.34,
    )  # fmt: skip
    ds = load_dataset(spec)
    assert ds.class_names == ("a", "b")
    assert ds.mean == pytest.approx((0.485, 0.456, 0.406))
    white = (1.0 - torch.tensor(ds.mean)) / torch.tensor(ds.std)
    x = torch.cat([ds.train_x, ds.holdout_x])
    y = torch.cat([ds.train_y, ds.holdout_y])
    # Class "a" (label 0): entirely white after the centre crop, no black border.
    assert torch.allclose(x[y == 0], white.view(1, 3, 1, 1).expand_as(x[y == 0]), atol=1e-5)
    # Round trip: the new fields are stored when set, omitted at their defaults.
    assert DatasetSpec.from_dict(spec.to_dict()) == spec
    assert "normalization" not in DatasetSpec().to_dict()
    with pytest.raises(ValueError, match="normalization must be one of"):
        DatasetSpec(normalization="zscore")
    with pytest.raises(ValueError, match="crop_fraction"):
        DatasetSpec(crop_fraction=0.0)


@pytest.mark.slow
def test_digits_hard_is_deterministic_and_split_by_source_digit() -> None:
    a = load_dataset("digits-hard")
    assert a.n_holdout >= 2000 and a.n_train == 3 * 1437 and a.n_holdout == 6 * 360
    assert a.train_x.shape[1:] == (3, 48, 48) and a.n_classes == 10
    # Split on source digits: no handwritten sample is on both sides.
    assert not set(a.train_index.tolist()) & set(a.holdout_index.tolist())
    assert np.bincount(a.holdout_y.numpy(), minlength=10).min() >= 180
    b = load_dataset("digits-hard")
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.holdout_y, b.holdout_y)
    # Each image keeps its source digit's label.
    from sklearn.datasets import load_digits

    target = load_digits().target
    assert np.array_equal(target[a.holdout_index], a.holdout_y.numpy())
    assert abs(float(a.train_x.mean())) < 1e-3  # normalised with train statistics
    with pytest.raises(ValueError, match="takes no path"):
        DatasetSpec.parse("digits-hard:/tmp/x")


def test_render_digits_draws_only_from_the_given_sources() -> None:
    from supernets.synthetic import HardDigitsConfig, render_digits

    quiet = HardDigitsConfig(strokes=(0, 0), noise=(0.0, 0.0), distractors=(1, 1))
    # Blank sources and no strokes: nothing but each image's flat background.
    img, source_of = render_digits(np.zeros((4, 8, 8)), 3, seed=0, cfg=quiet)
    assert img.shape == (12, 3, 48, 48) and source_of.tolist() == [
        0,
        0,
        0,
        1,
        1,
        1,
        2,
        2,
        2,
        3,
        3,
        3,
    ]
    assert np.ptp(img.reshape(12, 3, -1), axis=2).max() < 1e-6
    # One inked source: ink appears, and the same seed gives the same images.
    src = np.zeros((2, 8, 8))
    src[0, 2:6, 3:5] = 1.0
    one, _ = render_digits(src, 2, seed=1, cfg=quiet)
    again, _ = render_digits(src, 2, seed=1, cfg=quiet)
    assert np.array_equal(one, again) and np.ptp(one[0].reshape(3, -1), axis=1).max() > 0.2
    with pytest.raises(ValueError, match="strokes"):
        HardDigitsConfig(strokes=(2, 1))
