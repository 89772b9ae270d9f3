"""Elastic (weight-sharing) layers of the OFA supernet.

There is no global switch anywhere: widths are read from the input tensor
(BatchNorm, depthwise conv and SE slice their weights to ``x.shape[1]``), and
the only per-module state is the active kernel size and expand ratio of each
:class:`ElasticMBConv`, set by ``supernet.set_active(arch)``. Two supernets in
one process therefore never interfere.

* Elastic kernel: one max-size depthwise weight; a smaller kernel is the
  centre crop of the next larger one passed through a learned per-layer
  transform matrix (7->5 is 25x25, 5->3 is 9x9, initialised to identity),
  chained from the largest kernel down.
* Elastic expand: the first ``mid`` channels of every max-size tensor. Before
  an expand phase :meth:`ElasticMBConv.sort_channels` permutes the middle
  channels by importance so that the most useful ones sit in the small widths.
* Dynamic BatchNorm and SE: slices of max-size parameters and running stats.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from supernets.layers import MBConvSpec, make_activation, se_hidden_channels
from supernets.spaces import make_divisible

__all__ = [
    "ElasticBatchNorm2d",
    "ElasticDepthwiseConv2d",
    "ElasticMBConv",
    "ElasticSqueezeExcite",
]


class ElasticBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm over the first ``x.shape[1]`` channels of a max-size BN.

    Slicing a 1-D buffer gives a view, so ``F.batch_norm`` updates the shared
    running statistics in place. The momentum handling mirrors
    ``nn.BatchNorm2d`` (including ``momentum=None``, the cumulative average
    that BN recalibration relies on).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if c == self.num_features:
            return super().forward(x)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            factor = (
                1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            )
        use_batch_stats = self.training or self.running_mean is None
        return F.batch_norm(
            x,
            None if self.running_mean is None else self.running_mean[:c],
            None if self.running_var is None else self.running_var[:c],
            self.weight[:c],
            self.bias[:c],
            use_batch_stats,
            factor,
            self.eps,
        )


class ElasticDepthwiseConv2d(nn.Module):
    """Depthwise conv with elastic kernel size and elastic channel count."""

    def __init__(self, channels: int, kernel_sizes: Sequence[int], stride: int) -> None:
        super().__init__()
        self.kernel_sizes = tuple(sorted(int(k) for k in kernel_sizes))
        self.stride = stride
        k_max = self.kernel_sizes[-1]
        self.weight = nn.Parameter(torch.empty(channels, 1, k_max, k_max))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        # One matrix per step of the chain (7->5, 5->3), shared by all channels.
        self.transforms = nn.ParameterDict(
            {
                f"{src}to{dst}": nn.Parameter(torch.eye(dst * dst))
                for src, dst in zip(self.kernel_sizes[1:], self.kernel_sizes[:-1], strict=True)
            }
        )

    def filter(self, channels: int, kernel_size: int) -> torch.Tensor:
        """The ``(channels, 1, k, k)`` kernel that a subnet uses."""
        if kernel_size not in self.kernel_sizes:
            raise ValueError(f"kernel size {kernel_size} not in {list(self.kernel_sizes)}")
        w = self.weight[:channels]
        for src, dst in zip(self.kernel_sizes[:0:-1], self.kernel_sizes[-2::-1], strict=True):
            if src <= kernel_size:
                break
            start = (src - dst) // 2
            crop = w[:, :, start : start + dst, start : start + dst].reshape(-1, dst * dst)
            w = F.linear(crop, self.transforms[f"{src}to{dst}"]).reshape(channels, 1, dst, dst)
        return w

    def forward(self, x: torch.Tensor, kernel_size: int) -> torch.Tensor:
        c = x.shape[1]
        return F.conv2d(x, self.filter(c, kernel_size), None, self.stride, kernel_size // 2, 1, c)


class ElasticSqueezeExcite(nn.Module):
    """SE whose input width and hidden width follow ``x.shape[1]``."""

    def __init__(self, max_channels: int) -> None:
        super().__init__()
        hidden = se_hidden_channels(max_channels)
        self.reduce = nn.Conv2d(max_channels, hidden, 1, bias=True)
        self.expand = nn.Conv2d(hidden, max_channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        h = se_hidden_channels(c)
        y = x.mean((2, 3), keepdim=True)
        y = F.relu(F.conv2d(y, self.reduce.weight[:h, :c], _bias(self.reduce)[:h]))
        y = F.hardsigmoid(F.conv2d(y, self.expand.weight[:c, :h], _bias(self.expand)[:c]))
        return x * y


def _bias(conv: nn.Conv2d) -> torch.Tensor:
    assert conv.bias is not None
    return conv.bias


def _permute_bn(bn: nn.BatchNorm2d, idx: torch.Tensor) -> None:
    for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
        if t is not None:
            t.data = t.data.index_select(0, idx)


class ElasticMBConv(nn.Module):
    """MBConv block with elastic kernel size and expand ratio.

    Input and output widths are fixed (OFA's width multiplier is not elastic);
    the middle width is ``make_divisible(in_channels * expand_ratio, 8)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_sizes: Sequence[int],
        expand_ratios: Sequence[int],
        stride: int,
        act: str,
        se: bool,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_sizes = tuple(sorted(kernel_sizes))
        self.expand_ratios = tuple(sorted(expand_ratios))
        self.stride = stride
        self.act_name = act
        max_mid = self.mid_channels(self.expand_ratios[-1])
        self.expand_conv = nn.Conv2d(in_channels, max_mid, 1, bias=False)
        self.expand_bn = ElasticBatchNorm2d(max_mid)
        self.dw_conv = ElasticDepthwiseConv2d(max_mid, self.kernel_sizes, stride)
        self.dw_bn = ElasticBatchNorm2d(max_mid)
        self.se = ElasticSqueezeExcite(max_mid) if se else None
        self.project_conv = nn.Conv2d(max_mid, out_channels, 1, bias=False)
        self.project_bn = nn.BatchNorm2d(out_channels)
        self.act = make_activation(act)
        self.residual = stride == 1 and in_channels == out_channels
        self.kernel_size = self.kernel_sizes[-1]
        self.expand_ratio = self.expand_ratios[-1]

    def mid_channels(self, expand_ratio: int) -> int:
        return make_divisible(self.in_channels * expand_ratio, 8)

    def set_active(self, kernel_size: int, expand_ratio: int) -> None:
        if kernel_size not in self.kernel_sizes:
            raise ValueError(f"kernel size {kernel_size} not in {list(self.kernel_sizes)}")
        if expand_ratio not in self.expand_ratios:
            raise ValueError(f"expand ratio {expand_ratio} not in {list(self.expand_ratios)}")
        self.kernel_size = kernel_size
        self.expand_ratio = expand_ratio

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mid = self.mid_channels(self.expand_ratio)
        y = self.act(self.expand_bn(F.conv2d(x, self.expand_conv.weight[:mid])))
        y = self.act(self.dw_bn(self.dw_conv(y, self.kernel_size)))
        if self.se is not None:
            y = self.se(y)
        y = self.project_bn(F.conv2d(y, self.project_conv.weight[:, :mid]))
        if self.residual:
            y = y + x
        return y

    # -- extraction ----------------------------------------------------------
    def static_spec(self) -> MBConvSpec:
        return MBConvSpec(
            in_channels=self.in_channels,
            out_channels=self.out_channels,
            kernel_size=self.kernel_size,
            stride=self.stride,
            mid_channels=self.mid_channels(self.expand_ratio),
            act=self.act_name,
            se=self.se is not None,
        )

    @torch.no_grad()
    def static_state(self) -> dict[str, torch.Tensor]:
        """State dict of the equivalent :class:`supernets.layers.MBConv` (active config)."""
        mid = self.mid_channels(self.expand_ratio)
        out: dict[str, torch.Tensor] = {
            "expand.conv.weight": self.expand_conv.weight[:mid],
            "dw.conv.weight": self.dw_conv.filter(mid, self.kernel_size),
            "project.conv.weight": self.project_conv.weight[:, :mid],
        }
        out.update(_bn_state("expand.bn", self.expand_bn, mid))
        out.update(_bn_state("dw.bn", self.dw_bn, mid))
        out.update(_bn_state("project.bn", self.project_bn, self.out_channels))
        if self.se is not None:
            h = se_hidden_channels(mid)
            out["se.reduce.weight"] = self.se.reduce.weight[:h, :mid]
            out["se.reduce.bias"] = _bias(self.se.reduce)[:h]
            out["se.expand.weight"] = self.se.expand.weight[:mid, :h]
            out["se.expand.bias"] = _bias(self.se.expand)[:mid]
        return {k: v.detach().clone() for k, v in out.items()}

    # -- channel sorting -----------------------------------------------------
    @torch.no_grad()
    def sort_channels(self, keep_expand_ratios: Sequence[int] = ()) -> None:
        """Permute the middle channels by importance (L1 norm of the projection
        weights that read them), most important first.

        ``keep_expand_ratios``: widths already trained as subnets; sorting happens
        within the bands they delimit, so a channel inside the e=4 width stays
        inside it (OFA's second expand phase). The permutation is applied to
        every tensor touching the middle channels, so the largest subnet
        computes exactly the same function afterwards.
        """
        n = self.project_conv.weight.shape[1]
        importance = self.project_conv.weight.abs().sum(dim=(0, 2, 3))
        bounds = sorted({self.mid_channels(e) for e in keep_expand_ratios} | {n})
        band = torch.zeros(n, dtype=torch.long, device=importance.device)
        for b in bounds[:-1]:
            band[b:] += 1
        # Band first, then importance (descending): one stable lexicographic sort.
        order = torch.argsort(-importance, stable=True)
        idx = order[torch.argsort(band[order], stable=True)]
        self._permute_mid(idx)
        if self.se is not None:
            se_importance = self.se.expand.weight.abs().sum(dim=(0, 2, 3))
            se_idx = torch.argsort(-se_importance, stable=True)
            self.se.expand.weight.data = self.se.expand.weight.data.index_select(1, se_idx)
            self.se.reduce.weight.data = self.se.reduce.weight.data.index_select(0, se_idx)
            _bias(self.se.reduce).data = _bias(self.se.reduce).data.index_select(0, se_idx)

    def _permute_mid(self, idx: torch.Tensor) -> None:
        self.expand_conv.weight.data = self.expand_conv.weight.data.index_select(0, idx)
        _permute_bn(self.expand_bn, idx)
        self.dw_conv.weight.data = self.dw_conv.weight.data.index_select(0, idx)
        _permute_bn(self.dw_bn, idx)
        if self.se is not None:
            self.se.reduce.weight.data = self.se.reduce.weight.data.index_select(1, idx)
            self.se.expand.weight.data = self.se.expand.weight.data.index_select(0, idx)
            _bias(self.se.expand).data = _bias(self.se.expand).data.index_select(0, idx)
        self.project_conv.weight.data = self.project_conv.weight.data.index_select(1, idx)


def _bn_state(prefix: str, bn: nn.BatchNorm2d, c: int) -> dict[str, torch.Tensor]:
    assert bn.running_mean is not None and bn.running_var is not None
    assert bn.num_batches_tracked is not None
    return {
        f"{prefix}.weight": bn.weight[:c],
        f"{prefix}.bias": bn.bias[:c],
        f"{prefix}.running_mean": bn.running_mean[:c],
        f"{prefix}.running_var": bn.running_var[:c],
        f"{prefix}.num_batches_tracked": bn.num_batches_tracked,
    }
