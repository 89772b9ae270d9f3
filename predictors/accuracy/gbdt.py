"""The GBDT accuracy predictor: an ensemble of XGBoost models on encoded architectures.

Why an ensemble: NAS fits this model on tens to a few thousand measured
architectures. A handful of differently-seeded (and, by default, differently
-objectived) boosters give a spread that tracks the error (Spearman 0.44-0.59
between std and absolute error on NAS-Bench-201): the uncertainty the search
loop uses to decide what to measure next. Bootstrapping the rows as well is
available but ranked worse in the benchmark, so it is off by default.

Why rank-normalised targets: accuracy tables have degenerate tails (10% cells
in NAS-Bench-201) that dominate a squared loss on raw accuracies; fitting the
targets' normal scores lifted Kendall's tau from 0.50 to 0.61 at n=100.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xgboost as xgb

from predictors._checks import check_features
from predictors.accuracy.features import SumFeatures, auto_sum_features, binary_columns

__all__ = ["GBDTAccuracyPredictor", "GBDTParams"]

_FORMAT = "hwnas-gbdt-accuracy"
_FORMAT_VERSION = 1

Objective = Literal["mixed", "pairwise", "regression"]
_OBJECTIVES = ("mixed", "pairwise", "regression")


@dataclass(frozen=True)
class GBDTParams:
    """Booster hyper-parameters, chosen for the small-n regime (see the benchmark).

    Shallow trees, a small learning rate and row/column subsampling: at n=100
    XGBoost's defaults (depth 6, lr 0.3) memorise the sample and rank worse.
    """

    n_rounds: int = 300
    learning_rate: float = 0.05
    max_depth: int = 4
    min_child_weight: float = 1.0
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    reg_lambda: float = 1.0
    reg_alpha: float = 0.0
    gamma: float = 0.0
    #: Pairs drawn per sample by the ``"pairwise"`` objective (cost grows with it).
    pairs_per_sample: int = 16

    def xgb_params(self) -> dict[str, Any]:
        return {
            "eta": self.learning_rate,
            "max_depth": self.max_depth,
            "min_child_weight": self.min_child_weight,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "lambda": self.reg_lambda,
            "alpha": self.reg_alpha,
            "gamma": self.gamma,
        }


@dataclass
class _Fitted:
    boosters: list[xgb.Booster]
    feature_dim: int
    y_sorted: np.ndarray  # training targets, sorted: maps rank-space predictions back
    y_mean: float
    y_std: float
    # Per member: (slope, intercept) from booster output to the target's score
    # scale (identity for regression members; fitted for ranking members).
    calib: list[tuple[float, float]]
    features: SumFeatures  # derived columns appended to X (resolved at fit time)
    binary: np.ndarray  # columns that were 0/1 in every training row (one-hot bits)


class GBDTAccuracyPredictor:
    """Predict architecture accuracy from its encoding with an XGBoost ensemble.

    >>> p = GBDTAccuracyPredictor(seed=0).fit(X, y)      # doctest: +SKIP
    >>> mean, std = p.predict_with_uncertainty(X_new)    # doctest: +SKIP

    Parameters
    ----------
    seed:
        Seeds the bootstrap draws and every booster: same data + seed, same model.
    n_models:
        Ensemble size (>= 1). ``predict_with_uncertainty``'s std is the spread
        of the members; with 1 member it is zero.
    objective:
        ``"pairwise"``: XGBoost ``rank:pairwise`` with uniformly drawn pairs
        (scores are mapped to the target scale by a linear fit on the training
        data); ``"regression"``: squared error on the transformed targets;
        ``"mixed"`` (default): members alternate, regression first (5 members:
        3 regression, 2 pairwise). On NAS-Bench-201 pairwise gives the best
        Kendall tau, regression the best top-1% precision (the squared loss
        weighs the tails, where the best cells are); mixed keeps nearly all of
        pairwise's tau, most of regression's top-k, and costs less than
        pairwise (benchmarks/results/accuracy_predictor.md).
    target:
        ``"rank"`` fits on the targets' normal scores (robust to the degenerate
        10%-accuracy cells that otherwise dominate a squared loss),
        ``"standardize"`` on z-scores.
    bootstrap:
        Resample the training rows per member (off: members then differ by
        their seeds, i.e. row/column subsampling, and by objective).
    features:
        Derived columns for the trees: ``"auto"`` appends choice counts over
        the one-hot blocks found in the training ``X``
        (:func:`~predictors.accuracy.features.auto_sum_features`), ``"raw"``
        uses ``X`` as is, a :class:`SumFeatures` (e.g. from
        :func:`~predictors.accuracy.features.space_sum_features`) is used as given.
    params:
        Booster hyper-parameters (:class:`GBDTParams` or a mapping of its fields).
    n_jobs:
        Ensemble members trained at the same time (threads). Each booster runs
        single-threaded: at these data sizes XGBoost's OpenMP threads mostly
        spin-wait, and on a shared 2-core machine a 50-row fit took 10-25 s
        with ``nthread=2`` against 0.3 s with one thread.
    """

    #: Fewer samples than this cannot be split into meaningful trees.
    MIN_SAMPLES = 5

    def __init__(
        self,
        seed: int = 0,
        *,
        n_models: int = 5,
        objective: Objective = "mixed",
        target: Literal["rank", "standardize"] = "rank",
        bootstrap: bool = False,
        features: Literal["auto", "raw"] | SumFeatures | Mapping[str, Any] = "auto",
        params: GBDTParams | Mapping[str, Any] | None = None,
        n_jobs: int = 1,
    ) -> None:
        if n_jobs < 1:
            raise ValueError(f"n_jobs must be >= 1, got {n_jobs}")
        if n_models < 1:
            raise ValueError(f"n_models must be >= 1, got {n_models}")
        if objective not in _OBJECTIVES:
            raise ValueError(f"objective must be one of {list(_OBJECTIVES)}, got {objective!r}")
        if target not in ("rank", "standardize"):
            raise ValueError(f"target must be 'rank' or 'standardize', got {target!r}")
        if params is None:
            params = GBDTParams()
        elif isinstance(params, Mapping):
            unknown = set(params) - set(GBDTParams.__dataclass_fields__)
            if unknown:
                raise ValueError(f"unknown GBDT parameter(s): {sorted(unknown)}")
            params = GBDTParams(**params)
        if isinstance(features, Mapping):
            features = SumFeatures.from_dict(dict(features))
        elif not isinstance(features, SumFeatures) and features not in ("auto", "raw"):
            raise ValueError(f"features must be 'auto', 'raw' or SumFeatures, got {features!r}")
        self.seed = int(seed)
        self.n_models = int(n_models)
        self.objective: Objective = objective
        self.target = target
        self.bootstrap = bool(bootstrap)
        self.features = features
        self.params = params
        self.n_jobs = int(n_jobs)
        self._fitted: _Fitted | None = None

    # -- configuration ----------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """JSON-able constructor arguments (stored with a saved model)."""
        return {
            "seed": self.seed,
            "n_models": self.n_models,
            "objective": self.objective,
            "target": self.target,
            "bootstrap": self.bootstrap,
            "features": (
                self.features.to_dict() if isinstance(self.features, SumFeatures) else self.features
            ),
            "params": asdict(self.params),
        }

    def __repr__(self) -> str:
        state = "fitted" if self._fitted is not None else "unfitted"
        return f"GBDTAccuracyPredictor({self.get_config()}, {state})"

    @property
    def is_fitted(self) -> bool:
        return self._fitted is not None

    @property
    def feature_dim(self) -> int:
        return self._require_fitted().feature_dim

    # -- fitting ------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> GBDTAccuracyPredictor:
        """Fit on encoded architectures ``X`` (n, d) and measured accuracies ``y`` (n,)."""
        X, y = check_training_data(X, y, min_samples=self.MIN_SAMPLES)
        if isinstance(self.features, SumFeatures):
            features = self.features
        elif self.features == "auto":
            features = auto_sum_features(X)
        else:
            features = SumFeatures((), ())
        d = X.shape[1]
        binary = binary_columns(X)
        X = features.transform(X)
        z, y_mean, y_std = self._transform_target(y)
        rng = np.random.default_rng(self.seed)
        n = X.shape[0]
        # Rows per member are drawn up front, in order, so the model does not
        # depend on how many members train concurrently.
        rows = [
            rng.integers(n, size=n) if self.bootstrap and self.n_models > 1 else np.arange(n)
            for _ in range(self.n_models)
        ]
        objectives = self.member_objectives()
        jobs = [(X[idx], z[idx], self.seed * 1000 + m, objectives[m]) for m, idx in enumerate(rows)]
        if self.n_jobs > 1:
            # XGBoost releases the GIL while it trains: threads run in parallel.
            with ThreadPoolExecutor(max_workers=self.n_jobs) as pool:
                boosters = list(pool.map(lambda job: self._train_one(*job), jobs))
        else:
            boosters = [self._train_one(*job) for job in jobs]
        calib = [
            _linear_fit(b.inplace_predict(X), z) if obj == "pairwise" else (1.0, 0.0)
            for b, obj in zip(boosters, objectives, strict=True)
        ]
        self._fitted = _Fitted(boosters, d, np.sort(y), y_mean, y_std, calib, features, binary)
        return self

    def _transform_target(self, y: np.ndarray) -> tuple[np.ndarray, float, float]:
        y_mean, y_std = float(y.mean()), float(y.std())
        if self.target == "rank":
            return _normal_scores(y), y_mean, y_std
        return (y - y_mean) / (y_std if y_std > 0 else 1.0), y_mean, y_std

    def member_objectives(self) -> list[str]:
        """``"pairwise"`` or ``"regression"`` for each ensemble member."""
        if self.objective != "mixed":
            return [self.objective] * self.n_models
        return ["pairwise" if m % 2 else "regression" for m in range(self.n_models)]

    def _train_one(self, X: np.ndarray, z: np.ndarray, seed: int, objective: str) -> xgb.Booster:
        params = {
            **self.params.xgb_params(),
            "tree_method": "hist",
            "seed": seed,
            "nthread": 1,
            "verbosity": 0,
        }
        dtrain = xgb.DMatrix(X, label=z)
        if objective == "pairwise":
            params["objective"] = "rank:pairwise"
            # XGBoost's default pairs each sample with the top of its query
            # (made for search-engine NDCG); a predictor for NAS must order the
            # whole population, so draw pairs uniformly instead.
            params["lambdarank_pair_method"] = "mean"
            params["lambdarank_num_pair_per_sample"] = self.params.pairs_per_sample
            dtrain.set_group([X.shape[0]])  # one query: rank every arch against every other
        else:
            params["objective"] = "reg:squarederror"
            params["base_score"] = 0.0
        return xgb.train(params, dtrain, num_boost_round=self.params.n_rounds)

    # -- prediction ---------------------------------------------------------
    def predict(self, X: Any) -> np.ndarray:
        """Predicted accuracy of each row of ``X``: shape ``(m,)``."""
        return self.predict_with_uncertainty(X)[0]

    def predict_with_uncertainty(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, std)``, each ``(m,)``: ensemble mean and spread, in accuracy units."""
        X = self.design_matrix(X)
        if X.shape[0] == 0:
            return np.zeros(0), np.zeros(0)
        fitted = self._require_fitted()
        members = np.stack(
            [
                self._to_target_scale(slope * b.inplace_predict(X) + intercept)
                for b, (slope, intercept) in zip(fitted.boosters, fitted.calib, strict=True)
            ]
        )
        return members.mean(axis=0), members.std(axis=0)

    def contributions(self, X: Any) -> np.ndarray:
        """SHAP values (XGBoost's TreeSHAP), ensemble mean, in target-score units.

        Shape ``(m, design_dim + 1)``: one column per column of
        :meth:`design_matrix` (``X``'s own, then the derived ones), the last
        the bias. Multiply by :meth:`accuracy_per_score` for accuracy points.
        """
        design = self.design_matrix(X)
        fitted = self._require_fitted()
        dmat = xgb.DMatrix(design)
        total = np.zeros((design.shape[0], design.shape[1] + 1))
        for booster, (slope, intercept) in zip(fitted.boosters, fitted.calib, strict=True):
            total += slope * booster.predict(dmat, pred_contribs=True)
            total[:, -1] += intercept
        return total / len(fitted.boosters)

    def design_matrix(self, X: Any) -> np.ndarray:
        """What the boosters see: checked ``X`` with the derived columns appended."""
        fitted = self._require_fitted()
        X = check_features(X, fitted.feature_dim)
        # A one-hot bit that is not 0/1 means X is not the encoding the model
        # was fitted on (raw parameter values, another space's layout...).
        bad = fitted.binary & ~binary_columns(X)
        if bad.any():
            cols = np.flatnonzero(bad)[:5].tolist()
            raise ValueError(
                f"unknown encoding: column(s) {cols} were 0/1 in every training row "
                "but X has other values there"
            )
        return fitted.features.transform(X)

    @property
    def derived_features(self) -> SumFeatures:
        """The derived columns resolved at fit time (appended after ``X``'s own)."""
        return self._require_fitted().features

    def accuracy_per_score(self) -> float:
        """Accuracy points per unit of booster output, near the median accuracy.

        Used to read SHAP values (booster units) as accuracy. With rank targets
        a normal score of 1 is, around the median, one standard deviation of
        the bulk of the accuracies: IQR / 1.349 (a plain standard deviation
        would be inflated by the tails, e.g. NAS-Bench-201's 10% cells).
        """
        fitted = self._require_fitted()
        if self.target == "standardize":
            return fitted.y_std
        q25, q75 = np.quantile(fitted.y_sorted, [0.25, 0.75])
        return float(q75 - q25) / 1.349

    def _to_target_scale(self, z: np.ndarray) -> np.ndarray:
        fitted = self._require_fitted()
        z = np.asarray(z, dtype=np.float64)
        if self.target == "rank":
            return _from_normal_scores(z, fitted.y_sorted)
        return z * (fitted.y_std if fitted.y_std > 0 else 1.0) + fitted.y_mean

    def _require_fitted(self) -> _Fitted:
        if self._fitted is None:
            raise ValueError("the predictor is not fitted: call fit(X, y) first")
        return self._fitted

    @property
    def boosters(self) -> list[xgb.Booster]:
        """The fitted ensemble members (e.g. for SHAP contributions)."""
        return list(self._require_fitted().boosters)

    # -- persistence ----------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Serialise the fitted model (JSON with the boosters inlined): what the DB stores."""
        fitted = self._require_fitted()
        payload = {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "xgboost_version": xgb.__version__,
            "config": self.get_config(),
            "feature_dim": fitted.feature_dim,
            "y_sorted": fitted.y_sorted.tolist(),
            "y_mean": fitted.y_mean,
            "y_std": fitted.y_std,
            "calibration": [list(c) for c in fitted.calib],
            "derived_features": fitted.features.to_dict(),
            "binary_columns": np.flatnonzero(fitted.binary).tolist(),
            "boosters": [
                base64.b64encode(bytes(b.save_raw(raw_format="ubj"))).decode("ascii")
                for b in fitted.boosters
            ],
        }
        return json.dumps(payload).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> GBDTAccuracyPredictor:
        try:
            payload = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a saved GBDTAccuracyPredictor: {exc}") from None
        if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
            raise ValueError("not a saved GBDTAccuracyPredictor (format tag missing)")
        if payload.get("format_version") != _FORMAT_VERSION:
            raise ValueError(
                f"saved predictor has format version {payload.get('format_version')}, "
                f"this hwnas reads version {_FORMAT_VERSION}"
            )
        config = dict(payload["config"])
        predictor = cls(**config)
        boosters = []
        for blob in payload["boosters"]:
            booster = xgb.Booster()
            booster.load_model(bytearray(base64.b64decode(blob)))
            booster.set_param({"nthread": 1})  # see n_jobs: one thread per booster
            boosters.append(booster)
        predictor._fitted = _Fitted(
            boosters=boosters,
            feature_dim=int(payload["feature_dim"]),
            y_sorted=np.asarray(payload["y_sorted"], dtype=np.float64),
            y_mean=float(payload["y_mean"]),
            y_std=float(payload["y_std"]),
            calib=[(float(a), float(b)) for a, b in payload["calibration"]],
            features=SumFeatures.from_dict(payload["derived_features"]),
            binary=np.isin(np.arange(int(payload["feature_dim"])), payload["binary_columns"]),
        )
        return predictor

    def save(self, path: str | Path) -> Path:
        """Write the fitted model to ``path`` (one JSON file); returns the path."""
        path = Path(path)
        path.write_bytes(self.to_bytes())
        return path

    @classmethod
    def load(cls, path: str | Path) -> GBDTAccuracyPredictor:
        return cls.from_bytes(Path(path).read_bytes())


# -- input checks ---------------------------------------------------------------
def check_training_data(X: Any, y: Any, *, min_samples: int) -> tuple[np.ndarray, np.ndarray]:
    X = check_features(X)
    y_arr = np.asarray(y, dtype=np.float64)
    if y_arr.ndim != 1:
        raise ValueError(f"y must be a 1-D array of accuracies, got shape {y_arr.shape}")
    if X.shape[0] != y_arr.shape[0]:
        raise ValueError(
            f"X and y must have the same length, got {X.shape[0]} rows and {y_arr.shape[0]} values"
        )
    if not np.isfinite(y_arr).all():
        bad = int((~np.isfinite(y_arr)).sum())
        raise ValueError(f"y must be finite: {bad} accuracy value(s) are NaN or inf")
    if X.shape[0] < min_samples:
        raise ValueError(f"need at least {min_samples} training samples, got {X.shape[0]}")
    if X.shape[1] == 0:
        raise ValueError("X has no features")
    return X, y_arr


# -- target transforms -------------------------------------------------------------
def _normal_scores(y: np.ndarray) -> np.ndarray:
    """Rank-based normal scores (ties share their mean rank)."""
    from scipy import stats

    ranks = stats.rankdata(y)
    return stats.norm.ppf((ranks - 0.5) / y.shape[0])


def _from_normal_scores(z: np.ndarray, y_sorted: np.ndarray) -> np.ndarray:
    """Monotone map back: normal score -> quantile of the training accuracies."""
    from scipy import stats

    n = y_sorted.shape[0]
    q = stats.norm.cdf(z) * n - 0.5  # fractional index into the sorted targets
    out = np.interp(q, np.arange(n), y_sorted)
    # Beyond the training range np.interp would clip, tying every architecture
    # predicted better than the best one seen: exactly the ones a search wants
    # ordered. Extrapolate linearly with the tails' slope instead (kept > 0).
    k = min(5, n - 1)
    floor = 1e-6 * max(float(y_sorted[-1] - y_sorted[0]), 1.0)
    hi = max(float(y_sorted[-1] - y_sorted[-1 - k]) / k, floor)
    lo = max(float(y_sorted[k] - y_sorted[0]) / k, floor)
    out = np.where(q > n - 1, y_sorted[-1] + hi * (q - (n - 1)), out)
    return np.where(q < 0, y_sorted[0] + lo * q, out)


def _linear_fit(x: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    x = np.asarray(x, dtype=np.float64)
    var = float(x.var())
    if var <= 0:
        return 0.0, float(t.mean())
    slope = float(np.mean((x - x.mean()) * (t - t.mean())) / var)
    if slope <= 0:  # keep the map monotone increasing: a ranker's order is the point
        slope = float(t.std() / np.sqrt(var)) if t.std() > 0 else 1.0
    return slope, float(t.mean() - slope * x.mean())
