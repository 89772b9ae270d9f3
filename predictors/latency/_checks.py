"""Input checks shared by the latency predictors: clear ``ValueError`` messages
for the mistakes a caller (or a device submitting measurements) actually makes."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_features", "check_latencies"]


def check_features(X: Any, feature_dim: int | None = None, *, name: str = "X") -> np.ndarray:
    """``X`` as a finite ``(n, d)`` float array; ``d == feature_dim`` when given.

    A single 1-D row of the right width is accepted as one architecture.
    """
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim == 1 and feature_dim is not None and arr.shape[0] == feature_dim:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array (n_archs, n_features) of encoded architectures, "
            f"got shape {arr.shape}"
        )
    if feature_dim is not None and arr.shape[1] != feature_dim:
        raise ValueError(
            f"feature width mismatch: {name} has {arr.shape[1]} features per architecture but "
            f"the predictor was fitted on {feature_dim} (different search space or encoder?)"
        )
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has no features")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite (NaN or inf in the encoded architectures)")
    return arr


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
