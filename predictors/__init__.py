"""Accuracy predictors (GBDT), meta-learned latency predictors, on-device latency
measurement and predictor quality metrics. Knows nothing of jobs or HTTP."""

from predictors.metrics import (
    kendall_tau,
    quality_report,
    rmse,
    spearman_rho,
    top_k_precision,
    within_tolerance,
)

__all__ = [
    "kendall_tau",
    "quality_report",
    "rmse",
    "spearman_rho",
    "top_k_precision",
    "within_tolerance",
]
