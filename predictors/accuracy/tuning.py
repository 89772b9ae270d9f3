"""Hyper-parameter tuning of the GBDT predictor with Optuna, by cross-validation.

Worth it only with enough data: with 50 samples a 3-fold Kendall's tau is
too noisy to pick between configurations, and the defaults (chosen on
NAS-Bench-201 for that regime) are the safer bet. The defaults are the first
trial, so tuning can only replace them with something that did better on the
same folds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import optuna

from predictors.accuracy.gbdt import GBDTAccuracyPredictor, GBDTParams
from predictors.metrics import kendall_tau

__all__ = ["MIN_TUNE_SAMPLES", "TuningResult", "cross_validated_predictions", "tune_params"]

#: Below this many samples ``fit_with_report(tune="auto")`` keeps the defaults.
MIN_TUNE_SAMPLES = 200


@dataclass(frozen=True)
class TuningResult:
    params: GBDTParams
    cv_kendall_tau: float
    default_cv_kendall_tau: float
    n_trials: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": asdict(self.params),
            "cv_kendall_tau": self.cv_kendall_tau,
            "default_cv_kendall_tau": self.default_cv_kendall_tau,
            "n_trials": self.n_trials,
            "seconds": self.seconds,
        }


def cross_validated_predictions(
    make: Callable[[], GBDTAccuracyPredictor],
    X: np.ndarray,
    y: np.ndarray,
    *,
    folds: int,
    seed: int,
) -> tuple[np.ndarray, list[float]]:
    """Out-of-fold predictions of ``make()`` models, and Kendall's tau per fold."""
    n = X.shape[0]
    if not 2 <= folds <= n // 2:
        raise ValueError(f"folds must be in [2, {n // 2}] for {n} samples, got {folds}")
    order = np.random.default_rng(seed).permutation(n)
    oof = np.empty(n)
    taus: list[float] = []
    for part in np.array_split(order, folds):
        train = np.setdiff1d(order, part)
        oof[part] = make().fit(X[train], y[train]).predict(X[part])
        taus.append(kendall_tau(y[part], oof[part]))
    return oof, taus


def _suggest(trial: optuna.Trial) -> GBDTParams:
    return GBDTParams(
        n_rounds=trial.suggest_int("n_rounds", 100, 800, log=True),
        learning_rate=trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        max_depth=trial.suggest_int("max_depth", 2, 7),
        min_child_weight=trial.suggest_float("min_child_weight", 0.5, 10.0, log=True),
        subsample=trial.suggest_float("subsample", 0.5, 1.0),
        colsample_bytree=trial.suggest_float("colsample_bytree", 0.3, 1.0),
        reg_lambda=trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
    )


def tune_params(
    X: np.ndarray,
    y: np.ndarray,
    *,
    seed: int = 0,
    timeout: float = 30.0,
    n_trials: int = 100,
    folds: int = 3,
    predictor_kwargs: Mapping[str, Any] | None = None,
) -> TuningResult:
    """Search :class:`GBDTParams` maximising cross-validated Kendall's tau.

    Stops after ``n_trials`` or once ``timeout`` seconds have passed (checked
    between trials, so it can overrun by one trial). Trials fit single models
    (``n_models=1``): the ensemble's members share the parameters, and one
    member is 5x cheaper, so more configurations fit in the budget.
    """
    kwargs = {**(predictor_kwargs or {}), "n_models": 1}
    kwargs.pop("params", None)
    if timeout <= 0 or n_trials < 1:
        raise ValueError("tuning needs timeout > 0 and n_trials >= 1")

    def score(params: GBDTParams) -> float:
        oof, _ = cross_validated_predictions(
            lambda: GBDTAccuracyPredictor(seed=seed, params=params, **kwargs),
            X,
            y,
            folds=folds,
            seed=seed,
        )
        return kendall_tau(y, oof)

    def objective(trial: optuna.Trial) -> float:
        return score(_suggest(trial))

    start = time.perf_counter()
    defaults = GBDTParams()
    tunable = {f.name for f in fields(GBDTParams)} - {"gamma", "reg_alpha", "pairs_per_sample"}
    # Optuna logs every trial at INFO; a library call should not print them.
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(
            direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed)
        )
        study.enqueue_trial({k: v for k, v in asdict(defaults).items() if k in tunable})
        study.optimize(objective, n_trials=n_trials, timeout=timeout)
    finally:
        optuna.logging.set_verbosity(verbosity)
    best = study.best_trial
    default_value = study.trials[0].value
    return TuningResult(
        params=GBDTParams(**{**asdict(defaults), **best.params}),
        cv_kendall_tau=float(best.value if best.value is not None else np.nan),
        default_cv_kendall_tau=float(default_value if default_value is not None else np.nan),
        n_trials=len(study.trials),
        seconds=time.perf_counter() - start,
    )
