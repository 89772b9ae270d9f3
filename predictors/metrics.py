"""Predictor quality metrics, in one place for every caller.

All functions take ``(y_true, y_pred)`` as array-likes of equal length and
return plain floats, so results serialise straight to JSON / the database.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats

__all__ = [
    "kendall_tau",
    "quality_report",
    "rmse",
    "spearman_rho",
    "top_k_precision",
    "within_tolerance",
]


def _pair(
    y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if t.shape != p.shape:
        raise ValueError(
            f"y_true and y_pred must have the same length, got {t.shape[0]} and {p.shape[0]}"
        )
    if t.shape[0] < 2:
        raise ValueError(f"need at least 2 values to compare, got {t.shape[0]}")
    if not (np.isfinite(t).all() and np.isfinite(p).all()):
        raise ValueError("y_true and y_pred must be finite (no NaN or inf)")
    return t, p


def _rank_corr(
    statistic: Callable[[np.ndarray, np.ndarray], Any], t: np.ndarray, p: np.ndarray
) -> float:
    # A constant prediction has no ranking: scipy warns and returns NaN; report
    # 0 (no information) so that callers can average and compare without NaN
    # checks, and without a warning for a case this function defines.
    if np.ptp(t) == 0 or np.ptp(p) == 0:
        return 0.0
    value = float(statistic(t, p).statistic)
    return 0.0 if np.isnan(value) else value


def kendall_tau(
    y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray
) -> float:
    """Kendall rank correlation (tau-b, ties handled)."""
    t, p = _pair(y_true, y_pred)
    return _rank_corr(stats.kendalltau, t, p)


def spearman_rho(
    y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray
) -> float:
    """Spearman rank correlation."""
    t, p = _pair(y_true, y_pred)
    return _rank_corr(stats.spearmanr, t, p)


def rmse(y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray) -> float:
    t, p = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((t - p) ** 2)))


def top_k_precision(
    y_true: Sequence[float] | np.ndarray,
    y_pred: Sequence[float] | np.ndarray,
    k: int,
    *,
    higher_is_better: bool = True,
) -> float:
    """Share of the predicted top-``k`` that are in the true top-``k``."""
    t, p = _pair(y_true, y_pred)
    if not 1 <= k <= t.shape[0]:
        raise ValueError(f"k must be in [1, {t.shape[0]}], got {k}")
    sign = -1.0 if higher_is_better else 1.0
    true_top = set(np.argsort(sign * t, kind="stable")[:k].tolist())
    pred_top = set(np.argsort(sign * p, kind="stable")[:k].tolist())
    return len(true_top & pred_top) / k


def within_tolerance(
    y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray, tol: float = 0.1
) -> float:
    """Share of predictions within ``±tol`` relative error of the truth (e.g. latency ±10%)."""
    t, p = _pair(y_true, y_pred)
    if tol <= 0:
        raise ValueError(f"tol must be positive, got {tol}")
    if (t == 0).any():
        raise ValueError("within_tolerance needs non-zero true values (relative error)")
    return float(np.mean(np.abs(p - t) <= tol * np.abs(t)))


def quality_report(
    y_true: Sequence[float] | np.ndarray,
    y_pred: Sequence[float] | np.ndarray,
    *,
    top_k: int | None = None,
    higher_is_better: bool = True,
) -> dict[str, float]:
    """The standard metric set as a JSON-able dict (what gets stored with a model)."""
    t, p = _pair(y_true, y_pred)
    report = {
        "n": float(t.shape[0]),
        "kendall_tau": kendall_tau(t, p),
        "spearman_rho": spearman_rho(t, p),
        "rmse": rmse(t, p),
    }
    if top_k is not None:
        k = min(top_k, t.shape[0])
        report[f"top{k}_precision"] = top_k_precision(t, p, k, higher_is_better=higher_is_better)
    return report
