"""Training data for an accuracy predictor, and fitting it with a quality report.

The service wires these to the database (each measurement becomes a stored
trial, each fitted predictor a versioned model with its report); here they are
plain functions over a space, an RNG and an ``evaluate(arch) -> accuracy``
callable (for a supernet: extract the subnet, recalibrate BN, measure holdout
accuracy).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from predictors.accuracy.gbdt import GBDTAccuracyPredictor, check_training_data
from predictors.accuracy.tuning import (
    MIN_TUNE_SAMPLES,
    TuningResult,
    cross_validated_predictions,
    tune_params,
)
from predictors.metrics import quality_report
from supernets.spaces import SearchSpace

__all__ = ["Dataset", "FitReport", "fit_with_report", "sample_dataset"]


@dataclass(frozen=True)
class Dataset:
    """Measured architectures: ``archs[i]`` encodes to ``X[i]`` and scored ``y[i]``."""

    archs: list[Any]
    X: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.archs)


def sample_dataset(
    space: SearchSpace[Any],
    n: int,
    evaluate: Callable[[Any], float],
    rng: np.random.Generator,
    *,
    exclude: Iterable[str] = (),
    on_measured: Callable[[Any, float], None] | None = None,
    max_draws: int | None = None,
) -> Dataset:
    """Sample ``n`` distinct architectures (by network identity), measure each.

    ``exclude`` holds ``space.arch_hash`` values already measured (resuming
    after a crash: do not pay for them twice). ``on_measured(arch, accuracy)``
    runs right after each measurement, so a caller can store it before the
    next one starts. Sampling gives up after ``max_draws`` draws (default
    ``20 n + 100``) instead of looping forever on a space too small for ``n``.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    max_draws = 20 * n + 100 if max_draws is None else max_draws
    seen = set(exclude)
    archs: list[Any] = []
    for _ in range(max_draws):
        if len(archs) == n:
            break
        arch = space.sample(rng)
        key = space.arch_hash(arch)
        if key not in seen:
            seen.add(key)
            archs.append(arch)
    if len(archs) < n:
        raise ValueError(
            f"found only {len(archs)} new distinct architectures of {space.name!r} in "
            f"{max_draws} draws, asked for {n}"
        )
    ys: list[float] = []
    for arch in archs:
        value = evaluate(arch)
        try:
            acc = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"evaluate({arch}) returned {value!r}, not a number") from None
        if not math.isfinite(acc):
            raise ValueError(f"evaluate({arch}) returned {acc}: accuracies must be finite")
        if on_measured is not None:
            on_measured(arch, acc)
        ys.append(acc)
    return Dataset(archs, space.encode_many(archs), np.asarray(ys, dtype=np.float64))


@dataclass(frozen=True)
class FitReport:
    """How good a fitted predictor is, measured on data it was not fitted on.

    ``metrics`` is :func:`predictors.metrics.quality_report` of out-of-fold
    predictions (``source="cv"``) or of a given holdout set
    (``source="holdout"``). ``fold_kendall_tau`` shows the spread across folds.
    """

    n_train: int
    source: str
    metrics: dict[str, float]
    fold_kendall_tau: list[float]
    config: dict[str, Any]
    fit_seconds: float
    tuning: dict[str, Any] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_train": self.n_train,
            "source": self.source,
            "metrics": self.metrics,
            "fold_kendall_tau": self.fold_kendall_tau,
            "config": self.config,
            "fit_seconds": self.fit_seconds,
            "tuning": self.tuning,
        }


def fit_with_report(
    X: Any,
    y: Any,
    *,
    seed: int = 0,
    cv: int = 5,
    holdout: tuple[Any, Any] | None = None,
    top_k: int = 10,
    tune: bool | str = False,
    tune_timeout: float = 30.0,
    **predictor_kwargs: Any,
) -> tuple[GBDTAccuracyPredictor, FitReport]:
    """Fit a :class:`GBDTAccuracyPredictor` on all of ``(X, y)`` and report its quality.

    Quality comes from ``holdout=(X_test, y_test)`` when given, otherwise from
    ``cv``-fold cross-validation (models of the same configuration on the
    other folds). ``tune=True`` first picks hyper-parameters with Optuna by
    cross-validation within ``tune_timeout`` seconds; ``tune="auto"`` does so
    only from :data:`~predictors.accuracy.tuning.MIN_TUNE_SAMPLES` samples on,
    where folds are big enough for the choice to mean something.
    ``predictor_kwargs`` go to the predictor (``objective``, ``n_models``, ...).
    """
    X_arr, y_arr = check_training_data(X, y, min_samples=GBDTAccuracyPredictor.MIN_SAMPLES)
    if tune not in (True, False, "auto"):
        raise ValueError(f"tune must be True, False or 'auto', got {tune!r}")
    n = X_arr.shape[0]
    tuning: TuningResult | None = None
    if tune is True or (tune == "auto" and n >= MIN_TUNE_SAMPLES):
        if "params" in predictor_kwargs:
            raise ValueError("pass either params or tune, not both")
        tuning = tune_params(
            X_arr, y_arr, seed=seed, timeout=tune_timeout, predictor_kwargs=predictor_kwargs
        )
        predictor_kwargs = {**predictor_kwargs, "params": tuning.params}

    def make() -> GBDTAccuracyPredictor:
        return GBDTAccuracyPredictor(seed=seed, **predictor_kwargs)

    start = time.perf_counter()
    predictor = make().fit(X_arr, y_arr)
    fit_seconds = time.perf_counter() - start
    if holdout is not None:
        X_test, y_test = check_training_data(*holdout, min_samples=2)
        metrics = quality_report(y_test, predictor.predict(X_test), top_k=top_k)
        source, fold_taus = "holdout", list[float]()
    else:
        if n < 10:
            raise ValueError(f"need at least 10 samples for a cross-validated report, got {n}")
        oof, fold_taus = cross_validated_predictions(
            make, X_arr, y_arr, folds=max(2, min(cv, n // 5)), seed=seed
        )
        metrics = quality_report(y_arr, oof, top_k=top_k)
        source = "cv"
    report = FitReport(
        n_train=n,
        source=source,
        metrics=metrics,
        fold_kendall_tau=fold_taus,
        config=predictor.get_config(),
        fit_seconds=fit_seconds,
        tuning=None if tuning is None else tuning.to_dict(),
    )
    return predictor, report
