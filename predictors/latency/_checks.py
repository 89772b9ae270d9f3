"""Input checks shared by the latency predictors: clear ``ValueError`` messages
for the mistakes a caller (or a device submitting measurements) actually makes."""

from __future__ import annotations

from typing import Any

import numpy as np

from predictors._checks import check_features

__all__ = ["check_features", "check_latencies"]


def check_latencies(y: Any, n: int | None = None, *, name: str = "latency") -> np.ndarray:
    """``y`` as a 1-D array of positive, finite latencies in ms (``n`` long when given)."""
    arr = np.asarray(y, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of latencies in ms, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(
            f"wrong number of latencies: {name} has {arr.shape[0]} values for {n} architectures"
        )
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(
            f"{name} must be finite: NaN or inf at position(s) {bad[:5].tolist()}"
            + (" ..." if bad.size > 5 else "")
        )
    bad = np.flatnonzero(arr <= 0)
    if bad.size:
        raise ValueError(
            f"{name} must be positive (milliseconds): value {arr[bad[0]]!r} at position "
            f"{int(bad[0])}" + (f" and {bad.size - 1} more" if bad.size > 1 else "")
        )
    return arr
