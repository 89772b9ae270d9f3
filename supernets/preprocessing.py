"""What a deployed subnet expects as input, written next to its weights.

A subnet is trained on images that the library resized and normalised with
its training split's per-channel statistics; an exported model without those
numbers is unusable. :class:`Preprocessing` records them -- input size,
layout, channel order, pixel scale, mean/std, the resize rule and the class
names -- and is written into an export's ``config.json`` and into the ONNX
model's ``metadata_props`` (see :mod:`supernets.export`).

The recipe, for a raw 8-bit image (H x W x 3 RGB, or H x W grey, replicated
to 3 channels):

1. resize to ``input_size`` x ``input_size``, bilinear with half-pixel
   centres and no antialiasing (``torch.nn.functional.interpolate(...,
   mode="bilinear", align_corners=False)``; skipped when the size matches);
2. divide by ``pixel_scale`` (255);
3. subtract ``mean`` and divide by ``std``, per channel;
4. lay out as ``NCHW`` float32.

:meth:`Preprocessing.prepare` is that recipe in code: the library's own
prediction for a raw image.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

    from supernets.data import ImageDataset

__all__ = ["PREPROCESSING_FORMAT", "Preprocessing"]

PREPROCESSING_FORMAT = "hwnas-preprocessing/1"


@dataclass(frozen=True)
class Preprocessing:
    """Input contract of an exported subnet (JSON-able; see the module docstring)."""

    input_size: int
    #: Per-channel mean and std in units of ``pixel / pixel_scale``; ``None``
    #: when the export was made without its dataset (unknown normalisation).
    mean: tuple[float, float, float] | None
    std: tuple[float, float, float] | None
    class_names: tuple[str, ...] | None = None
    layout: str = "NCHW"
    channel_order: str = "RGB"
    pixel_scale: float = 255.0
    resize: str = "bilinear-half-pixel-no-antialias"

    def __post_init__(self) -> None:
        if self.input_size < 1:
            raise ValueError(f"input_size must be >= 1, got {self.input_size}")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is not None:
                if len(value) != 3:
                    raise ValueError(f"{name} needs 3 channel values, got {list(value)}")
                object.__setattr__(self, name, tuple(float(v) for v in value))
        if (self.mean is None) != (self.std is None):
            raise ValueError("mean and std must both be given or both be None")
        if self.std is not None and min(self.std) <= 0:
            raise ValueError(f"std must be positive, got {list(self.std)}")
        if self.class_names is not None:
            object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))

    @classmethod
    def from_dataset(cls, dataset: ImageDataset, input_size: int) -> Preprocessing:
        """The preprocessing of a subnet trained on ``dataset`` at ``input_size``."""
        mean, std = dataset.mean, dataset.std
        return cls(
            input_size=int(input_size),
            mean=(mean[0], mean[1], mean[2]),
            std=(std[0], std[1], std[2]),
            class_names=tuple(dataset.class_names),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": PREPROCESSING_FORMAT,
            "input_size": self.input_size,
            "layout": self.layout,
            "channel_order": self.channel_order,
            "pixel_scale": self.pixel_scale,
            "mean": None if self.mean is None else list(self.mean),
            "std": None if self.std is None else list(self.std),
            "resize": self.resize,
            "class_names": None if self.class_names is None else list(self.class_names),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preprocessing:
        if data.get("format") != PREPROCESSING_FORMAT:
            raise ValueError(
                f"preprocessing format must be {PREPROCESSING_FORMAT!r}, got {data.get('format')!r}"
            )
        known = set(cls.__dataclass_fields__) | {"format"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"preprocessing has unknown field(s) {unknown}")
        kwargs = {k: v for k, v in data.items() if k != "format"}
        return cls(**kwargs)

    def metadata_props(self) -> dict[str, str]:
        """String key/values for an ONNX model's ``metadata_props``: every field
        under its own key (values JSON-encoded), so a runtime reads them one
        by one without knowing hwnas."""
        return {key: json.dumps(value) for key, value in self.to_dict().items()}

    @classmethod
    def from_metadata_props(cls, props: Mapping[str, str]) -> Preprocessing:
        fields = set(cls.__dataclass_fields__) | {"format"}
        return cls.from_dict({k: json.loads(v) for k, v in props.items() if k in fields})

    def prepare(self, images: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
        """Raw 8-bit images -> the model's input batch (the recipe above).

        ``images``: one image (H, W) / (H, W, 3) or a batch (N, H, W) /
        (N, H, W, 3), or a list of images of any sizes.
        """
        import torch
        import torch.nn.functional as F

        if self.mean is None or self.std is None:
            raise ValueError(
                "this export does not know its normalisation (exported without its dataset)"
            )
        if (
            isinstance(images, np.ndarray)
            and images.ndim in (2, 3)
            and (images.ndim == 2 or images.shape[-1] == 3)
        ):
            batch: Sequence[np.ndarray] = [images]
        else:
            batch = list(images)
        out = []
        for img in batch:
            arr = np.asarray(img, dtype=np.float32)
            if arr.ndim == 2:
                arr = np.repeat(arr[..., None], 3, axis=2)
            if arr.ndim != 3 or arr.shape[2] != 3:
                raise ValueError(f"an image must be (H, W) or (H, W, 3), got {arr.shape}")
            x = torch.from_numpy(arr).permute(2, 0, 1)[None]
            if x.shape[-2:] != (self.input_size, self.input_size):
                x = F.interpolate(
                    x, size=(self.input_size, self.input_size), mode="bilinear",
                    align_corners=False, antialias=False,
                )  # fmt: skip
            out.append(x[0])
        x = torch.stack(out) / self.pixel_scale
        mean = torch.tensor(self.mean, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(1, 3, 1, 1)
        return ((x - mean) / std).contiguous()
