"""Derived features for trees: counts of choices across one-hot blocks.

One-hot encodings are weak for trees at small n: "how many 3x3 convolutions
does the cell have" is a sum over six columns that no single split sees, yet
it is what accuracy mostly depends on. Adding such sums as columns lifts
Kendall's tau on NAS-Bench-201 from 0.55 to 0.59 at n=50 and from 0.62 to
0.65 at n=100; by n=1000 the trees find the counts themselves and raw
one-hot is 0.01 better (``benchmarks/results/accuracy_predictor.md``).

The predictor stays space-agnostic: :func:`auto_sum_features` finds the
one-hot blocks from the training matrix alone. :func:`space_sum_features`
builds the same kind of features from a search space (via
:func:`~predictors.accuracy.encoding.encoding_map`) when the caller has one:
it can tell kernel blocks from expand blocks, which the matrix cannot.
:func:`predictor_features` is what a caller holding the space should pass:
for OFA-MobileNetV3 spaces :func:`ofa_sum_features`, whose ordered summaries
(resolution at least r, kernel and expand counts, total depth) a tree can
split on once where the one-hot columns need several splits. Without them,
on ``ofa-mbv3-tiny`` trained on ``digits-hard`` at 40 measured subnets, the
matrix-found counts pool kernel and expand columns (both have three choices)
and the resolution, the main cause of accuracy, stays one-hot
(``python benchmarks/main_job_predictor.py --tune``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from predictors.accuracy.encoding import _key, encoding_map
from supernets.spaces import OFAMobileNetV3Space, SearchSpace

__all__ = [
    "SumFeatures",
    "auto_sum_features",
    "binary_columns",
    "ofa_sum_features",
    "one_hot_blocks",
    "predictor_features",
    "space_sum_features",
]


@dataclass(frozen=True)
class SumFeatures:
    """Extra columns, each the sum of a group of input columns."""

    groups: tuple[tuple[int, ...], ...]
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.groups) != len(self.names):
            raise ValueError("SumFeatures needs one name per group")
        for g in self.groups:
            if not g or min(g) < 0:
                raise ValueError(f"feature group must list column indices >= 0, got {g}")

    def transform(self, X: np.ndarray) -> np.ndarray:
        """``X`` with one column appended per group."""
        if not self.groups:
            return X
        if max(max(g) for g in self.groups) >= X.shape[1]:
            raise ValueError("feature group refers to a column beyond X's width")
        weights = np.zeros((X.shape[1], len(self.groups)))
        for j, group in enumerate(self.groups):
            weights[list(group), j] = 1.0
        return np.hstack([X, X @ weights])

    def to_dict(self) -> dict[str, Any]:
        return {"groups": [list(g) for g in self.groups], "names": list(self.names)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SumFeatures:
        return cls(tuple(tuple(int(c) for c in g) for g in data["groups"]), tuple(data["names"]))


def binary_columns(X: np.ndarray) -> np.ndarray:
    """Boolean mask of the columns of ``X`` whose values are all 0 or 1."""
    X = np.asarray(X)
    return ((X == 0) | (X == 1)).all(axis=0)


def one_hot_blocks(X: np.ndarray) -> list[tuple[int, ...]]:
    """Maximal runs of adjacent 0/1 columns that are never on together.

    A one-hot block (one edge's op, one block's kernel) is such a run; the next
    block's first column is on together with some column of this block in
    almost any sample of a few dozen rows, which ends the run. Runs of one
    column are not blocks and are left out.
    """
    X = np.asarray(X)
    binary = binary_columns(X)
    blocks: list[tuple[int, ...]] = []
    current: list[int] = []
    running = np.zeros(X.shape[0])
    for col in range(X.shape[1]):
        if binary[col] and current and (running + X[:, col] <= 1).all():
            current.append(col)
            running += X[:, col]
            continue
        if len(current) > 1:
            blocks.append(tuple(current))
        current = [col] if binary[col] else []
        running = X[:, col].astype(np.float64) if binary[col] else np.zeros(X.shape[0])
    if len(current) > 1:
        blocks.append(tuple(current))
    return blocks


def auto_sum_features(X: np.ndarray) -> SumFeatures:
    """Counts per position across same-size one-hot blocks, found in ``X``.

    NAS-Bench-201's 30 columns are 6 blocks of 5 ops: this yields the 5 op
    counts. Blocks of each size are pooled: position ``j`` of every size-``s``
    block is "the j-th choice" of parameters that share a candidate list.
    """
    by_size: dict[int, list[tuple[int, ...]]] = {}
    for block in one_hot_blocks(X):
        by_size.setdefault(len(block), []).append(block)
    groups: list[tuple[int, ...]] = []
    names: list[str] = []
    for size, blocks in sorted(by_size.items()):
        if len(blocks) < 2:
            continue
        for pos in range(size):
            groups.append(tuple(b[pos] for b in blocks))
            names.append(f"count(choice {pos} of {len(blocks)} blocks of {size})")
        every = tuple(sorted(c for b in blocks for c in b))
        if np.ptp(X[:, list(every)].sum(axis=1)) > 0:  # blocks can be absent (OFA depth)
            groups.append(every)
            names.append(f"count(present blocks of {size})")
    return SumFeatures(tuple(groups), tuple(names))


def space_sum_features(space: SearchSpace[Any], *, seed: int = 0) -> SumFeatures:
    """Counts of each value across parameters that share a candidate list.

    For NAS-Bench-201: one count per op over the 6 edges. For OFA-MobileNetV3:
    how many blocks use kernel 3/5/7 and expand 3/4/6 (kernel and expand kept
    apart, which :func:`auto_sum_features` cannot do).
    """
    emap = encoding_map(space, seed=seed)
    by_list: dict[tuple[Any, ...], list[str]] = {}
    for param, values in emap.choices.items():
        by_list.setdefault(tuple(map(repr, values)), []).append(param)
    groups: list[tuple[int, ...]] = []
    names: list[str] = []
    for params in by_list.values():
        if len(params) < 2:
            continue
        for value in emap.choices[params[0]]:
            cols = sorted({c for p in params for c in emap.indicators.get((p, _key(value)), ())})
            if cols:
                groups.append(tuple(cols))
                names.append(f"count({_family(params)} = {value})")
    return SumFeatures(tuple(groups), tuple(names))


def ofa_sum_features(space: OFAMobileNetV3Space) -> SumFeatures:
    """Ordered summaries of an OFA-MobileNetV3 encoding, as column sums.

    The encoding (:meth:`OFAMobileNetV3Space.encode`) is the resolution one-hot,
    then per slot the kernel one-hot, then per slot the expand one-hot, all
    zero for a skipped slot. From it: "resolution >= r" for every resolution
    but the smallest (a sum over the one-hot's upper part), how many blocks use
    each kernel size and each expand ratio, and the network's depth (present
    blocks: every present slot has exactly one kernel column on).
    """
    nr, nk, ne = len(space.resolutions), len(space.kernel_sizes), len(space.expand_ratios)
    slots = range(space.n_slots)
    kernel_base, expand_base = nr, nr + space.n_slots * nk
    groups: list[tuple[int, ...]] = []
    names: list[str] = []
    for i in range(1, nr):
        groups.append(tuple(range(i, nr)))
        names.append(f"resolution >= {space.resolutions[i]}")
    for j, k in enumerate(space.kernel_sizes):
        groups.append(tuple(kernel_base + s * nk + j for s in slots))
        names.append(f"count(kernel = {k})")
    for j, e in enumerate(space.expand_ratios):
        groups.append(tuple(expand_base + s * ne + j for s in slots))
        names.append(f"count(expand = {e})")
    groups.append(tuple(kernel_base + s * nk + j for s in slots for j in range(nk)))
    names.append("depth")
    return SumFeatures(tuple(groups), tuple(names))


def predictor_features(space: SearchSpace[Any]) -> SumFeatures | Literal["auto"]:
    """The derived features an accuracy predictor for ``space`` should use:
    :func:`ofa_sum_features` for OFA-MobileNetV3 spaces, otherwise ``"auto"``
    (on NAS-Bench-201 the matrix-found op counts are the space's own)."""
    if isinstance(space, OFAMobileNetV3Space):
        return ofa_sum_features(space)
    return "auto"


def _family(params: Sequence[str]) -> str:
    stem = params[0].rstrip("0123456789")
    return f"{stem}*" if all(p.rstrip("0123456789") == stem for p in params) else "/".join(params)
