"""Static building blocks of MobileNetV3 networks.

The supernet uses these for its fixed parts (stem, first block, head) and the
static subnets returned by :func:`supernets.extract_subnet` are built from them
entirely. Squeeze-excite and global pooling are written with ``x.mean`` rather
than ``AdaptiveAvgPool2d`` on purpose: the elastic layers use the very same
operations, so a static subnet reproduces the supernet's outputs bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from supernets.spaces import make_divisible

__all__ = [
    "ConvBNAct",
    "MBConv",
    "MBConvSpec",
    "SqueezeExcite",
    "make_activation",
    "se_hidden_channels",
]

ACTIVATIONS = ("relu", "h_swish")


def make_activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "h_swish":
        return nn.Hardswish()
    raise ValueError(f"activation must be one of {list(ACTIVATIONS)}, got {name!r}")


def se_hidden_channels(channels: int) -> int:
    """Hidden width of the squeeze-excite bottleneck (OFA: reduction 4, divisible by 8)."""
    return make_divisible(channels // 4, 8)


class ConvBNAct(nn.Module):
    """Conv (no bias) -> BatchNorm -> optional activation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        act: str | None = None,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            groups=groups,
            bias=False,
        )
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = make_activation(act) if act is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class SqueezeExcite(nn.Module):
    """Squeeze-excite with a hard-sigmoid gate (MobileNetV3)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = se_hidden_channels(channels)
        self.reduce = nn.Conv2d(channels, hidden, 1, bias=True)
        self.expand = nn.Conv2d(hidden, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.mean((2, 3), keepdim=True)
        y = F.relu(self.reduce(y))
        y = F.hardsigmoid(self.expand(y))
        return x * y


@dataclass(frozen=True)
class MBConvSpec:
    """Shape of one static MBConv block; JSON-able via :meth:`to_dict`."""

    in_channels: int
    out_channels: int
    kernel_size: int
    stride: int
    mid_channels: int
    act: str
    se: bool
    #: False only for OFA's fixed first block (expand ratio 1: no 1x1 expansion).
    expand: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MBConvSpec:
        return cls(**dict(data))


class MBConv(nn.Module):
    """Inverted bottleneck: [1x1 expand] -> kxk depthwise -> [SE] -> 1x1 project,
    with an identity shortcut when stride is 1 and the width is unchanged."""

    def __init__(self, spec: MBConvSpec) -> None:
        super().__init__()
        mid = spec.mid_channels
        if not spec.expand and mid != spec.in_channels:
            raise ValueError("a block without expansion must have mid_channels == in_channels")
        self.expand = (
            ConvBNAct(spec.in_channels, mid, 1, act=spec.act) if spec.expand else nn.Identity()
        )
        self.dw = ConvBNAct(mid, mid, spec.kernel_size, spec.stride, groups=mid, act=spec.act)
        self.se = SqueezeExcite(mid) if spec.se else nn.Identity()
        self.project = ConvBNAct(mid, spec.out_channels, 1)
        self.residual = spec.stride == 1 and spec.in_channels == spec.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.se(self.dw(self.expand(x))))
        if self.residual:
            y = y + x
        return y
