"""Shared costs: which encoding columns are one kind of operation.

A device's latency model is linear in the architecture encoding, one weight per
(position, choice) column. Devices of one hardware family agree on those
weights up to a few directions, which is what the meta-learned prior captures;
a device of another family (an accelerator, a large-batch GPU, a phone) often
differs along a direction no source device shows -- "a 3x3 convolution is
relatively cheap here", "every block has a fixed overhead". Such differences
act on one *kind* of operation wherever it occurs, so they have few degrees of
freedom (one per kind), which a handful of measurements can pin down.

:func:`shared_cost_groups` lists those kinds as a ``(d, m)`` 0/1 matrix:
column ``g`` marks the features that are kind ``g``. The latency predictor's
prior gets one shared cost per kind (``MetaLatencyPredictor.fit(groups=...)``).
The same matrix times the encoding counts the kinds (per-op counts, blocks per
kernel size, depth): features that mean the same on every hardware family.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from supernets.spaces import NB201_EDGES, NB201_OPS, NB201Space, OFAMobileNetV3Space, SearchSpace

__all__ = ["shared_cost_groups"]


def shared_cost_groups(space: SearchSpace[Any]) -> np.ndarray | None:
    """``(feature_dim, m)`` shared-cost groups of ``space``'s encoding, or None
    when the space's encoding has no known structure.

    * NAS-Bench-201: one group per operation (its column on each of the 6 edges).
    * OFA-MobileNetV3: one group per kernel size and per expand ratio (over all
      block slots), and one of every block's kernel columns together: a block
      present anywhere (a per-layer overhead; the sum is the depth).
    """
    base = getattr(space, "base", space)  # a restricted view encodes like its base
    if isinstance(base, NB201Space):
        n_ops = len(NB201_OPS)
        G = np.zeros((len(NB201_EDGES) * n_ops, n_ops))
        for edge in range(len(NB201_EDGES)):
            for op in range(n_ops):
                G[edge * n_ops + op, op] = 1.0
        return G
    if isinstance(base, OFAMobileNetV3Space):
        nk, ne, nr = len(base.kernel_sizes), len(base.expand_ratios), len(base.resolutions)
        slots = base.n_slots
        G = np.zeros((base.feature_dim, nk + ne + 1))
        for slot in range(slots):
            for ki in range(nk):
                G[nr + slot * nk + ki, ki] = 1.0
                G[nr + slot * nk + ki, nk + ne] = 1.0  # the block is present
            for ei in range(ne):
                G[nr + slots * nk + slot * ne + ei, nk + ei] = 1.0
        return G
    return None
