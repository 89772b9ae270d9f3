"""Image datasets for supernet training, by spec; nothing is ever downloaded.

A dataset is named by a :class:`DatasetSpec` (or its string form):

* ``digits`` -- scikit-learn's bundled 8x8 handwritten digits (1,797 images,
  10 classes): easy, every subnet scores 96-100 %;
* ``digits-hard`` -- the same digits rendered into 48x48 RGB scenes with
  random affine transforms, tinted backgrounds, distractor fragments,
  strokes and noise (:mod:`supernets.synthetic`): 1,437 source digits x 3 =
  4,311 training images, 360 unseen source digits x 6 = 2,160 holdout
  images (with the default 0.2 holdout fraction). Train and holdout come
  from disjoint source digits. The task of the shipped supernet: its
  subnets differ measurably on it;
* ``folder:/path`` -- an image folder with one sub-directory per class
  (read with Pillow, resized to ``image_size``);
* ``npz:/path/file.npz`` -- arrays ``x`` (N,H,W / N,H,W,C / N,C,H,W; uint8 in
  0-255 or float) and ``y`` (N integer labels).

Images are kept in memory as float tensors at their stored size and resized
to each batch's resolution on the fly (bilinear), because an OFA subnet's
resolution is part of its architecture. The train/holdout split is stratified
with a fixed seed; holdout images are never used for training or BN
recalibration. ``digits-hard`` is split on source digits before rendering.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "DATASET_KINDS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "NORMALIZATIONS",
    "DatasetSpec",
    "ImageDataset",
    "folder_classes",
    "load_dataset",
    "resize_all",
    "resize_batch",
]

DATASET_KINDS = ("digits", "digits-hard", "folder", "npz")
NORMALIZATIONS = ("split", "imagenet")
#: ImageNet's per-channel mean and std (of images scaled to 0..1), as
#: torchvision's and OFA's evaluation pipelines use them.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_LATER_DEFAULTS: dict[str, Any] = {"normalization": "split", "crop_fraction": 1.0}
#: Kinds generated from bundled data: no path.
BUNDLED_KINDS = ("digits", "digits-hard")
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"}


@dataclass(frozen=True)
class DatasetSpec:
    """Which data, and how it is split. JSON-able (stored in checkpoints and the DB)."""

    kind: str = "digits"
    path: str | None = None
    holdout_fraction: float = 0.2
    seed: int = 0
    #: Stored image size for ``folder`` (images are resized to it on load);
    #: ignored by ``digits`` (8x8), ``digits-hard`` (48x48) and ``npz`` (as given).
    image_size: int = 64
    #: ``"split"``: normalise by the training split's per-channel mean/std;
    #: ``"imagenet"``: by ImageNet's, which networks trained on ImageNet (OFA's
    #: released supernets) expect.
    normalization: str = "split"
    #: ``folder`` only. 1.0 resizes the whole image to ``image_size`` square;
    #: below 1, the shorter side is resized to ``image_size / crop_fraction``
    #: and the centre ``image_size`` square is kept (ImageNet evaluation: 0.875).
    crop_fraction: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in DATASET_KINDS:
            raise ValueError(
                f"dataset kind must be one of {list(DATASET_KINDS)}, got {self.kind!r}"
            )
        if self.kind in BUNDLED_KINDS and self.path is not None:
            raise ValueError(f"dataset kind {self.kind!r} takes no path")
        if self.kind not in BUNDLED_KINDS and not self.path:
            raise ValueError(f"dataset kind {self.kind!r} needs a path ('{self.kind}:/some/path')")
        if not 0.0 < self.holdout_fraction < 1.0:
            raise ValueError(f"holdout_fraction must be in (0, 1), got {self.holdout_fraction}")
        if self.image_size < 8:
            raise ValueError(f"image_size must be >= 8, got {self.image_size}")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {list(NORMALIZATIONS)}, got {self.normalization!r}"
            )
        if not 0.0 < self.crop_fraction <= 1.0:
            raise ValueError(f"crop_fraction must be in (0, 1], got {self.crop_fraction}")
        if self.path is not None:
            # Stored specs (checkpoints, the database) outlive the working directory.
            object.__setattr__(self, "path", os.path.abspath(os.path.expanduser(self.path)))

    @classmethod
    def parse(cls, text: str, **overrides: Any) -> DatasetSpec:
        """``"digits"``, ``"digits-hard"``, ``"folder:/data/imgs"``, ``"npz:/data/x.npz"`` or a JSON object."""
        text = text.strip()
        if text.startswith("{"):
            return cls.from_dict({**json.loads(text), **overrides})
        kind, sep, path = text.partition(":")
        return cls(kind=kind, path=path if sep else None, **overrides)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        # Fields added after the first release are written only when they
        # matter, so the specs of existing runs (compared on resume) and
        # checkpoints stay exactly as they were.
        for key, default in _LATER_DEFAULTS.items():
            if data[key] == default:
                del data[key]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetSpec:
        unknown = sorted(set(data) - {f for f in cls.__dataclass_fields__})
        if unknown:
            raise ValueError(f"dataset spec has unknown field(s) {unknown}")
        return cls(**dict(data))

    def __str__(self) -> str:
        return self.kind if self.path is None else f"{self.kind}:{self.path}"


@dataclass(frozen=True)
class ImageDataset:
    """A loaded dataset: normalised float images ``(N, 3, H, W)`` and labels, split."""

    spec: DatasetSpec
    train_x: torch.Tensor
    train_y: torch.Tensor
    holdout_x: torch.Tensor
    holdout_y: torch.Tensor
    class_names: tuple[str, ...]
    #: Positions of the split's images in the source (for audits: disjoint).
    train_index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    holdout_index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    #: Per-channel mean/std of the training split (already applied to the images).
    mean: tuple[float, ...] = field(default=(0.0, 0.0, 0.0))
    std: tuple[float, ...] = field(default=(1.0, 1.0, 1.0))

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def n_train(self) -> int:
        return int(self.train_y.shape[0])

    @property
    def n_holdout(self) -> int:
        return int(self.holdout_y.shape[0])

    def subset(self, n_train: int | None = None, n_holdout: int | None = None) -> ImageDataset:
        """The first ``n`` images of each split (tests and smoke runs)."""
        return replace(
            self,
            train_x=self.train_x[:n_train],
            train_y=self.train_y[:n_train],
            holdout_x=self.holdout_x[:n_holdout],
            holdout_y=self.holdout_y[:n_holdout],
            train_index=self.train_index[:n_train],
            holdout_index=self.holdout_index[:n_holdout],
        )

    def summary(self) -> dict[str, Any]:
        return {
            "spec": self.spec.to_dict(),
            "n_train": self.n_train,
            "n_holdout": self.n_holdout,
            "n_classes": self.n_classes,
            "class_names": list(self.class_names),
            "image_size": list(self.train_x.shape[-2:]),
        }


def resize_batch(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """Bilinear resize of an image batch to ``resolution`` x ``resolution``."""
    if x.shape[-2:] == (resolution, resolution):
        return x
    return F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)


def resize_all(x: torch.Tensor, resolution: int, chunk: int = 256) -> torch.Tensor:
    """:func:`resize_batch` over a whole split, ``chunk`` images at a time."""
    return torch.cat([resize_batch(x[i : i + chunk], resolution) for i in range(0, len(x), chunk)])


def iterate_batches(
    x: torch.Tensor, y: torch.Tensor, batch_size: int, resolution: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """In-order batches resized to ``resolution`` (evaluation, BN recalibration)."""
    for start in range(0, int(y.shape[0]), batch_size):
        yield resize_batch(x[start : start + batch_size], resolution), y[start : start + batch_size]


def load_dataset(spec: DatasetSpec | str | Mapping[str, Any] = "digits") -> ImageDataset:
    """Load and split the dataset named by ``spec`` (see the module docstring)."""
    if isinstance(spec, str):
        spec = DatasetSpec.parse(spec)
    elif isinstance(spec, Mapping):
        spec = DatasetSpec.from_dict(spec)
    if spec.kind == "digits-hard":
        return _hard_digits(spec)
    if spec.kind == "digits":
        images, labels, names = _load_digits()
    elif spec.kind == "folder":
        images, labels, names = _load_folder(
            Path(str(spec.path)), spec.image_size, spec.crop_fraction
        )
    else:
        images, labels, names = _load_npz(Path(str(spec.path)))
    return _split(spec, images, labels, names)


def _load_digits() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)[:, None]  # (N, 1, 8, 8), 0..1
    return images, bunch.target.astype(np.int64), tuple(str(n) for n in bunch.target_names)


def _hard_digits(spec: DatasetSpec) -> ImageDataset:
    return _hard_digits_cached(spec.holdout_fraction, spec.seed)


# Rendering takes seconds; a process that loads the split again (the service
# evaluates, searches and exports in turn) gets the same tensors back. They are
# never modified in place by the library (batches are indexed copies).
@lru_cache(maxsize=2)
def _hard_digits_cached(holdout_fraction: float, seed: int) -> ImageDataset:
    from supernets.synthetic import HardDigitsConfig, render_digits, split_sources

    spec = DatasetSpec(kind="digits-hard", holdout_fraction=holdout_fraction, seed=seed)
    sources, labels, names = _load_digits()
    cfg = HardDigitsConfig()
    train_src, hold_src = split_sources(labels, spec.holdout_fraction, spec.seed)
    # Each split is rendered with its own seed and only its own digits (the
    # distractor fragments too), so no handwriting crosses the split.
    train_img, train_of = render_digits(
        sources[train_src, 0], cfg.train_copies, seed=spec.seed * 2 + 1, cfg=cfg
    )
    hold_img, hold_of = render_digits(
        sources[hold_src, 0], cfg.holdout_copies, seed=spec.seed * 2 + 2, cfg=cfg
    )
    return _normalised(
        spec,
        torch.from_numpy(train_img),
        torch.from_numpy(labels[train_src][train_of]),
        torch.from_numpy(hold_img),
        torch.from_numpy(labels[hold_src][hold_of]),
        names,
        train_src[train_of],
        hold_src[hold_of],
    )


def folder_classes(root: str | os.PathLike[str]) -> list[str]:
    """Class names of an image folder, in label order: its sub-directory names,
    sorted (as torchvision's ``ImageFolder``, hence OFA's ImageNet labels, has
    them). Empty sub-directories count, so a subset of ImageNet keeps the
    labels of the full set when every class directory is present."""
    path = Path(root)
    if not path.is_dir():
        raise ValueError(f"image folder {str(path)!r} does not exist or is not a directory")
    return sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def _load_folder(
    root: Path, size: int, crop_fraction: float = 1.0
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - Pillow is a dependency
        raise ImportError("loading an image folder needs Pillow (pip install pillow)") from exc
    classes = folder_classes(root)
    if len(classes) < 2:
        raise ValueError(f"image folder {str(root)!r} needs >= 2 class sub-directories")
    images: list[np.ndarray] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        files = sorted(p for p in (root / name).rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES)
        for path in files:
            with Image.open(path) as img:
                rgb = _fit(img.convert("RGB"), size, crop_fraction)
                images.append(np.asarray(rgb, dtype=np.uint8))
            labels.append(label)
    if not images:
        raise ValueError(f"image folder {str(root)!r} contains no images")
    arr = np.stack(images).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    return arr, np.asarray(labels, dtype=np.int64), tuple(classes)


def _fit(img: Any, size: int, crop_fraction: float) -> Any:
    """``size`` x ``size`` RGB image: squashed (``crop_fraction`` 1) or resized
    by its shorter side and centre-cropped."""
    from PIL import Image

    if crop_fraction >= 1.0:
        return img.resize((size, size), Image.Resampling.BILINEAR)
    short = int(np.ceil(size / crop_fraction))
    w, h = img.size
    scale = short / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    img = img.resize((nw, nh), Image.Resampling.BILINEAR)
    left, top = (nw - size) // 2, (nh - size) // 2
    return img.crop((left, top, left + size, top + size))


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    if not path.is_file():
        raise ValueError(f"npz file {str(path)!r} does not exist")
    with np.load(path, allow_pickle=False) as data:
        if "x" not in data or "y" not in data:
            raise ValueError(f"npz file must hold arrays 'x' and 'y', found {sorted(data.files)}")
        x, y = np.asarray(data["x"]), np.asarray(data["y"])
        names = tuple(str(n) for n in data["class_names"]) if "class_names" in data else None
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(
            f"npz 'x' must be (N,H,W), (N,H,W,C) or (N,C,H,W) with C 1 or 3, got {x.shape}"
        )
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"npz 'y' must be 1-D with {x.shape[0]} labels, got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"npz 'y' must hold integer labels, got {y.dtype}")
    xf = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    classes, labels = np.unique(y, return_inverse=True)
    if names is None or len(names) != len(classes):
        names = tuple(str(c) for c in classes)
    return xf, labels.astype(np.int64), names


def _split(
    spec: DatasetSpec, images: np.ndarray, labels: np.ndarray, names: tuple[str, ...]
) -> ImageDataset:
    from sklearn.model_selection import train_test_split

    if len(names) < 2:
        raise ValueError("a dataset needs at least 2 classes")
    idx = np.arange(labels.shape[0])
    counts = np.bincount(labels)
    stratify = labels if counts.min() >= 2 else None
    train_idx, hold_idx = train_test_split(
        idx, test_size=spec.holdout_fraction, random_state=spec.seed, stratify=stratify
    )
    train_idx, hold_idx = np.sort(train_idx), np.sort(hold_idx)
    x = torch.from_numpy(images)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    y = torch.from_numpy(labels)
    return _normalised(
        spec,
        x[torch.from_numpy(train_idx)].contiguous(),
        y[torch.from_numpy(train_idx)].contiguous(),
        x[torch.from_numpy(hold_idx)].contiguous(),
        y[torch.from_numpy(hold_idx)].contiguous(),
        names,
        train_idx,
        hold_idx,
    )


def _normalised(
    spec: DatasetSpec,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_hold: torch.Tensor,
    y_hold: torch.Tensor,
    names: tuple[str, ...],
    train_idx: np.ndarray,
    hold_idx: np.ndarray,
) -> ImageDataset:
    """Normalise both splits: by the training split's per-channel statistics, or
    by ImageNet's (``spec.normalization``)."""
    if spec.normalization == "imagenet":
        mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    else:
        mean = x_train.mean(dim=(0, 2, 3))
        std = x_train.std(dim=(0, 2, 3)).clamp_min(1e-6)
    norm = (mean.view(1, 3, 1, 1), std.view(1, 3, 1, 1))
    return ImageDataset(
        spec=spec,
        train_x=(x_train - norm[0]) / norm[1],
        train_y=y_train,
        holdout_x=(x_hold - norm[0]) / norm[1],
        holdout_y=y_hold,
        class_names=names,
        train_index=train_idx,
        holdout_index=hold_idx,
        mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std),
    )
