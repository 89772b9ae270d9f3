"""Input checks shared by every predictor: encoded architectures as features."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_features"]


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
            f"the predictor was fitted on {feature_dim}: unknown encoding "
            "(different search space or encoder?)"
        )
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has no features")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite (NaN or inf in the encoded architectures)")
    return arr
