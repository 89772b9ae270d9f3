"""MACs and parameter counts of architectures, per search space, computed analytically.

The search loop needs these for hard constraints (``max_macs``, ``max_params``)
over thousands of candidates per second, so they are closed-form counts from
the space's shape, not a traced model.

What is counted (both spaces): multiply-accumulates of convolutions and linear
layers, and parameters of convolutions, linear layers and BatchNorm (scale and
shift). Pooling, additions and activations are not MACs.

* ``nb201``: the NAS-Bench-201 network on 32x32 inputs, 10 classes: 3x3 stem
  conv (3->16) -> 5 cells at C=16 (32x32) -> residual reduction block ->
  5 cells at C=32 (16x16) -> reduction -> 5 cells at C=64 (8x8) -> BN ->
  global pool -> linear. Every edge of every cell is computed (as the
  official implementation does, even edges that cannot reach the output), so
  the cost is linear in the one-hot encoding: a fixed part plus a per-(edge,
  op) weight. This reproduces NAS-Bench-201's published range (7.78M to
  220.11M MACs, 0.073M to 1.53M parameters).
* ``ofa-mbv3*``: the OFA-MobileNetV3 topology read from the space object
  (widths after the width multiplier, strides, SE placement), ``n_classes``
  outputs (1000 by default, ImageNet). Middle channels are
  ``make_divisible(in * e, 8)``, SE squeeze channels ``make_divisible(mid // 4, 8)``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from supernets.spaces import (
    NB201_OPS,
    NB201Space,
    OFAMobileNetV3Space,
    RestrictedSpace,
    SearchSpace,
    make_divisible,
)

__all__ = ["ArchCosts", "has_cost_model", "macs_and_params", "nb201_cost_weights"]


@dataclass(frozen=True)
class ArchCosts:
    """MACs and parameter counts of a batch of architectures, aligned with the input."""

    macs: np.ndarray
    params: np.ndarray


# -- NAS-Bench-201 --------------------------------------------------------------------
_NB201_STAGES: tuple[tuple[int, int], ...] = ((16, 32), (32, 16), (64, 8))  # (C, H=W)
_NB201_CELLS_PER_STAGE = 5
_NB201_CLASSES = 10


def _conv(c_in: int, c_out: int, k: int, h_out: int, *, bn: bool = True) -> tuple[int, int]:
    """(MACs, params) of a bias-free k x k conv (+ BatchNorm) with an h_out x h_out output."""
    weights = c_in * c_out * k * k
    return weights * h_out * h_out, weights + (2 * c_out if bn else 0)


def _nb201_fixed() -> tuple[int, int]:
    macs, params = _conv(3, 16, 3, 32)  # stem
    for (c_in, h_in), (c_out, _) in itertools.pairwise(_NB201_STAGES):
        h = h_in // 2
        for m, p in (
            _conv(c_in, c_out, 3, h),  # conv_a, stride 2
            _conv(c_out, c_out, 3, h),  # conv_b
            _conv(c_in, c_out, 1, h, bn=False),  # shortcut: avg-pool then 1x1 conv
        ):
            macs, params = macs + m, params + p
    c_last = _NB201_STAGES[-1][0]
    params += 2 * c_last  # final BN
    macs += c_last * _NB201_CLASSES
    params += c_last * _NB201_CLASSES + _NB201_CLASSES
    return macs, params


def nb201_cost_weights() -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """``(macs_w, params_w, (macs0, params0))``: cost = one-hot encoding @ w + fixed.

    ``macs_w`` and ``params_w`` have one entry per (edge, op) slot of the
    NB201 encoding (edge-major, ops in ``NB201_OPS`` order).
    """
    kernel = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}
    per_op_macs = np.zeros(len(NB201_OPS))
    per_op_params = np.zeros(len(NB201_OPS))
    for j, op in enumerate(NB201_OPS):
        if op in kernel:  # ReLU-Conv-BN, C -> C, stride 1
            for c, h in _NB201_STAGES:
                m, p = _conv(c, c, kernel[op], h)
                per_op_macs[j] += _NB201_CELLS_PER_STAGE * m
                per_op_params[j] += _NB201_CELLS_PER_STAGE * p
    n_edges = NB201Space().feature_dim // len(NB201_OPS)
    return np.tile(per_op_macs, n_edges), np.tile(per_op_params, n_edges), _nb201_fixed()


def _nb201_costs(
    space: NB201Space, archs: Sequence[Any], encoded: np.ndarray | None = None
) -> ArchCosts:
    macs_w, params_w, (macs0, params0) = nb201_cost_weights()
    X = (space.encode_many(archs) if encoded is None else encoded).astype(np.float64)
    return ArchCosts(macs=X @ macs_w + macs0, params=X @ params_w + params0)


# -- OFA-MobileNetV3 ------------------------------------------------------------------
def _out(h: int, stride: int) -> int:
    return (h + stride - 1) // stride  # "same" padding


def _ofa_one(space: OFAMobileNetV3Space, arch: Any, n_classes: int) -> tuple[int, int]:
    arch = space.validate(arch)
    h = _out(arch.r, 2)
    c = space.width(space.stem_width)
    macs, params = _conv(3, c, 3, h)
    # First block: depthwise 3x3 + linear 1x1 projection (expand ratio 1).
    first = space.width(space.first_block_width)
    m1, p1 = _conv(1, c, 3, h)  # depthwise: one 3x3 filter per channel
    m2, p2 = _conv(c, first, 1, h)
    macs, params, c = macs + m1 + m2, params + p1 + p2, first
    for stage, depth in enumerate(arch.d):
        c_out = space.width(space.stage_widths[stage])
        for i, slot in enumerate(space.stage_slots(stage)[:depth]):
            stride = space.stage_strides[stage] if i == 0 else 1
            k, e = arch.ks[slot], arch.e[slot]
            mid = make_divisible(c * e, 8)
            h_out = _out(h, stride)
            parts = [_conv(c, mid, 1, h), _conv(1, mid, k, h_out), _conv(mid, c_out, 1, h_out)]
            # Depthwise conv has `mid` groups: _conv(1, mid, ...) counts k*k*mid weights.
            if space.stage_se[stage]:
                squeeze = make_divisible(mid // 4, 8)
                se = 2 * mid * squeeze  # two 1x1 convs on the pooled 1x1 map, with bias
                parts.append((se, se + squeeze + mid))
            macs += sum(m for m, _ in parts)
            params += sum(p for _, p in parts)
            c, h = c_out, h_out
    final = space.width(space.final_expand_width)
    m, p = _conv(c, final, 1, h)
    mix = space.width(space.feature_mix_width)
    m_mix, p_mix = _conv(final, mix, 1, 1, bn=False)
    macs += m + m_mix + mix * n_classes
    params += p + p_mix + mix * n_classes + n_classes
    return macs, params


def _ofa_costs(
    space: OFAMobileNetV3Space,
    archs: Sequence[Any],
    n_classes: int = 1000,
    encoded: np.ndarray | None = None,
) -> ArchCosts:
    rows = [_ofa_one(space, a, n_classes) for a in archs]
    arr = np.asarray(rows, dtype=np.float64).reshape(-1, 2)
    return ArchCosts(macs=arr[:, 0], params=arr[:, 1])


_COST_MODELS: dict[type, Callable[..., ArchCosts]] = {
    NB201Space: _nb201_costs,
    OFAMobileNetV3Space: _ofa_costs,
}


def _unrestricted(space: SearchSpace[Any]) -> SearchSpace[Any]:
    # A RestrictedSpace shares its base's networks, hence its costs.
    return space.base if isinstance(space, RestrictedSpace) else space


def has_cost_model(space: SearchSpace[Any]) -> bool:
    return any(isinstance(_unrestricted(space), cls) for cls in _COST_MODELS)


def macs_and_params(space: SearchSpace[Any], archs: Sequence[Any], **kwargs: Any) -> ArchCosts:
    """MACs and parameter counts of ``archs`` in ``space`` (see the module docstring).

    Keyword arguments go to the space's counter (``n_classes`` for OFA spaces;
    ``encoded``: the archs' ``space.encode_many`` if already computed).
    Raises ``ValueError`` for a space without a cost model.
    """
    base = _unrestricted(space)
    for cls, fn in _COST_MODELS.items():
        if isinstance(base, cls):
            return fn(base, archs, **kwargs)
    known = ", ".join(sorted(cls.__name__ for cls in _COST_MODELS))
    raise ValueError(
        f"no MACs/params model for search space {space.name!r} ({type(space).__name__}); "
        f"known: {known}"
    )
