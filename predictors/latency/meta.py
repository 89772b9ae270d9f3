"""Meta-learned, few-shot latency prediction.

The model
---------
Latency on one device is, to a very good approximation, a *linear* function of
an architecture's encoding: on NAS-Bench-201 a ridge fit on the 30 one-hot
columns reaches Spearman .99+ on every GPU/CPU/FPGA/ASIC device of HELP's set
(trees and MLPs do worse at the same sample size). Devices differ in the
weights -- how expensive a 3x3 conv is relative to a pooling layer -- and those
weights are strongly correlated across devices. So:

* :meth:`MetaLatencyPredictor.fit` fits one ridge model per *source* device
  (in a normalised target space, see below) and turns the spread of their
  weight vectors into a Gaussian prior over a new device's weights: mean =
  average source weights, covariance = source covariance + the mean direction
  (a new device may be uniformly faster or slower) + a small isotropic part
  (for what no source device shows). This is a hierarchical Bayesian linear
  model; the prior *is* what meta-training learns.
* :meth:`MetaLatencyPredictor.adapt` computes the posterior weights from the
  new device's few measurements (closed form, well under a millisecond) and
  averages the posteriors over a small grid of prior/noise scales (a cheap
  ensemble that removes the sensitivity to those two hyper-parameters).
* The reference architectures -- the ones a new device is asked to measure --
  are chosen by greedy Bayesian experimental design under that prior: each
  next one is the architecture whose measurement most reduces the average
  posterior variance over all architectures of ``X`` (A-optimality). They are
  ordered, so the first five are the best five.
* The target space is meta-learned too: ``lin`` (latency / its median, i.e. a
  sum of per-layer costs) or ``log`` (multiplicative effects). ``fit`` picks
  the one that adapts best in leave-one-source-device-out episodes (it picks
  ``lin`` on NAS-Bench-201 and ``log`` on OFA-MobileNetV3).

Measured against HELP, a MAML-trained neural predictor, on HELP's own protocol
in ``benchmarks/results/latency_predictor.md``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from predictors.latency._checks import check_features, check_latencies
from predictors.metrics import spearman_rho, within_tolerance

__all__ = ["DeviceLatencyPredictor", "MetaLatencyPredictor", "MetaParams"]

_META_FORMAT = "hwnas-meta-latency"
_DEVICE_FORMAT = "hwnas-device-latency"
_FORMAT_VERSION = 1
TARGET_SPACES = ("lin", "log")


@dataclass(frozen=True)
class MetaParams:
    """Hyper-parameters of :class:`MetaLatencyPredictor` (defaults from the benchmark).

    ``fit`` chooses the target space and the isotropic prior variance
    (``jitters``) by how well they adapt in leave-one-source-device-out
    episodes; ``adapt`` then averages the posterior over a small grid around
    the choice (``jitter * jitter_spread`` x ``noise``).
    """

    n_references: int = 10
    target_spaces: tuple[str, ...] = TARGET_SPACES
    #: Candidate isotropic prior variances, relative to the average prior variance
    #: of a weight: ``fit`` picks one in leave-one-device-out episodes.
    jitters: tuple[float, ...] = (1e-3, 1e-2, 1e-1)
    #: ``adapt`` averages posteriors over ``jitter * spread`` for each spread ...
    jitter_spread: tuple[float, ...] = (0.1, 1.0, 10.0)
    #: ... and each measurement-noise variance (target space; 1e-3 is ~3% noise).
    noise: tuple[float, ...] = (1e-4, 1e-3, 1e-2)
    #: Noise variance for reference design and outlier screening.
    design_noise: float = 1e-3
    #: Reference candidates: rows whose prior-mean latency lies in these quantiles
    #: (the extremes of a space are often degenerate, e.g. a cell of only "none").
    candidate_quantiles: tuple[float, float] = (0.05, 0.95)
    #: A measurement whose leave-one-out residual is this many predictive standard
    #: deviations off ...
    outlier_z: float = 8.0
    #: ... and off by more than this factor from what the other measurements
    #: predict is treated as a failed measurement and left out.
    outlier_ratio: float = 3.0
    #: Rows and held-out devices per leave-one-device-out pass (subsampled for speed).
    episode_rows: int = 3000
    episode_devices: int = 12
    #: Random measurement sets per held-out device (besides the designed ones).
    episode_draws: int = 3
    source_alphas: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
    #: Scale features to unit variance before fitting (the isotropic prior part
    #: then treats every column alike).
    standardize: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.n_references <= 10:
            raise ValueError(f"n_references must be in [1, 10], got {self.n_references}")
        unknown = sorted(set(self.target_spaces) - set(TARGET_SPACES))
        if unknown or not self.target_spaces:
            raise ValueError(f"target_spaces must be a non-empty subset of {TARGET_SPACES}")
        for name in ("jitters", "jitter_spread", "noise", "source_alphas"):
            values = getattr(self, name)
            if not values or min(values) <= 0:
                raise ValueError(f"{name} must be a non-empty list of positive numbers")
            object.__setattr__(self, name, tuple(float(v) for v in values))
        object.__setattr__(self, "target_spaces", tuple(self.target_spaces))
        object.__setattr__(
            self, "candidate_quantiles", tuple(float(q) for q in self.candidate_quantiles)
        )


# -- the prior ---------------------------------------------------------------------
@dataclass
class _Prior:
    """Source devices' ridge weights in one target space (standardised features)."""

    space: str
    jitter: float  # isotropic prior variance, relative (see MetaParams.jitters)
    weights: np.ndarray  # (n_sources, d)
    intercepts: np.ndarray  # (n_sources,)
    scales: np.ndarray  # (n_sources,) ms per target unit ("lin": median latency; "log": 1)

    def moments(self, exclude: int | None = None) -> tuple[float, np.ndarray, np.ndarray]:
        """``(intercept mean, weight mean, base covariance)`` from all sources but ``exclude``."""
        keep = [i for i in range(self.weights.shape[0]) if i != exclude]
        W = self.weights[keep]
        mu = W.mean(axis=0)
        cov = np.cov(W.T, bias=False) if W.shape[0] > 1 else np.zeros((W.shape[1],) * 2)
        cov = np.atleast_2d(cov)
        return float(self.intercepts[keep].mean()), mu, cov + np.outer(mu, mu)


def _to_target(y: np.ndarray, space: str) -> tuple[np.ndarray, float]:
    """Transform latencies (ms) into the target space; returns ``(t, scale)``."""
    if space == "log":
        return np.log(y), 1.0
    scale = float(np.median(y))
    return y / scale, scale


def _ridge_all(
    Z: np.ndarray, T: np.ndarray, alphas: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Ridge with intercept of every column of ``T`` on ``Z`` (n, d), alpha per
    column by generalised cross-validation; one SVD serves all columns."""
    n = Z.shape[0]
    z_mean, t_mean = Z.mean(axis=0), T.mean(axis=0)
    U, s, Vt = np.linalg.svd(Z - z_mean, full_matrices=False)
    Tc = T - t_mean
    UtT = U.T @ Tc  # (r, m)
    outside = (Tc**2).sum(axis=0) - (UtT**2).sum(axis=0)  # residual outside span(U)
    best_gcv = np.full(T.shape[1], np.inf)
    coef = np.zeros((Z.shape[1], T.shape[1]))
    s2 = s**2
    for alpha in alphas:
        a = float(alpha) * n  # alpha per sample: comparable across dataset sizes
        shrink = s2 / (s2 + a)
        resid = outside + (((1 - shrink)[:, None] * UtT) ** 2).sum(axis=0)
        dof = shrink.sum()
        gcv = resid / n / max(1.0 - dof / n, 1e-6) ** 2
        better = gcv < best_gcv
        if better.any():
            best_gcv[better] = gcv[better]
            coef[:, better] = Vt.T @ ((s / (s2 + a))[:, None] * UtT[:, better])
    intercept = t_mean - z_mean @ coef
    return coef.T, intercept


def _posterior(
    Za: np.ndarray, t: np.ndarray, mean: np.ndarray, cov: np.ndarray, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean of ``t = Za @ w + eps`` under ``w ~ N(mean, cov)``; also
    returns ``K^-1`` (for leave-one-out residuals). ``Za`` has the intercept column."""
    G = Za @ cov
    K = G @ Za.T + noise * np.eye(Za.shape[0])
    K_inv = np.linalg.inv(K)
    return mean + G.T @ (K_inv @ (t - Za @ mean)), K_inv


def _augment(Z: np.ndarray) -> np.ndarray:
    return np.hstack([np.ones((Z.shape[0], 1)), Z])


# Prior variance of the intercept: effectively flat (a new device's overall
# speed is not predictable from the others and 1 measurement pins it down).
_INTERCEPT_VAR = 1e4


def _full_prior(
    b0: float, mu: np.ndarray, base: np.ndarray, jitter: float
) -> tuple[np.ndarray, np.ndarray]:
    d = mu.shape[0]
    scale = float(np.trace(base)) / d if d else 1.0
    cov = np.zeros((d + 1, d + 1))
    cov[0, 0] = _INTERCEPT_VAR
    cov[1:, 1:] = base + jitter * max(scale, 1e-12) * np.eye(d)
    return np.r_[b0, mu], cov


def _design(
    Za: np.ndarray, cov: np.ndarray, noise: float, k: int, candidates: np.ndarray
) -> list[int]:
    """Greedy A-optimal design: ``k`` rows of ``candidates`` that most reduce the
    average posterior predictive variance over all rows of ``Za``.

    Picking row ``j`` reduces the total variance by ``||Za S z_j||^2 / (noise +
    z_j' S z_j)``; with ``M = Za'Za`` that is ``z_j' S M S z_j / (...)``. ``P =
    Z_c S`` and ``Q = P M`` are updated by rank-one steps, so each pick is O(n d).
    """
    M = Za.T @ Za / Za.shape[0]
    Zc = Za[candidates]
    P = Zc @ cov
    Q = P @ M
    chosen: list[int] = []
    taken = np.zeros(len(candidates), dtype=bool)
    S = cov.copy()
    for _ in range(min(k, len(candidates))):
        gain = np.einsum("ij,ij->i", Q, P) / (noise + np.einsum("ij,ij->i", P, Zc))
        gain[taken] = -np.inf
        j = int(np.argmax(gain))
        if not np.isfinite(gain[j]):
            break
        # identical encodings would be a wasted measurement: mark them all taken
        taken |= (Zc == Zc[j]).all(axis=1)
        chosen.append(int(candidates[j]))
        v = S @ Zc[j]
        c = noise + float(Zc[j] @ v)
        Pv = Zc @ v
        P -= np.outer(Pv, v) / c
        Q -= np.outer(Pv, M @ v) / c
        S -= np.outer(v, v) / c
    return chosen


@dataclass
class _Fitted:
    feature_mean: np.ndarray
    feature_scale: np.ndarray
    prior: _Prior
    source_devices: tuple[str, ...]
    reference_indices: np.ndarray
    reference_features: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


class MetaLatencyPredictor:
    """Meta-trained across source devices; adapts to a new device from <=10 measurements.

    >>> meta = MetaLatencyPredictor(seed=0).fit(X, Y)       # doctest: +SKIP
    >>> idx = meta.reference_indices                        # measure these rows of X
    >>> dev = meta.adapt(X[idx], y_new[idx])                # doctest: +SKIP
    >>> dev.predict(X_any)                                  # latency in ms

    ``X`` is ``(n_archs, d)``: architectures encoded as feature vectors (any
    search space); ``Y`` maps each source device name to its ``(n_archs,)``
    latencies in ms. ``metadata`` is free JSON-able information saved with the
    model (the shipped predictors record their search space and the reference
    architectures' configs there).
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        params: MetaParams | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.seed = int(seed)
        self.params = params if params is not None else MetaParams()
        self.metadata: dict[str, Any] = dict(metadata or {})
        self._fitted: _Fitted | None = None

    def __repr__(self) -> str:
        if self._fitted is None:
            return f"MetaLatencyPredictor(seed={self.seed}, unfitted)"
        f = self._fitted
        return (
            f"MetaLatencyPredictor(seed={self.seed}, sources={len(f.source_devices)}, "
            f"d={self.feature_dim}, space={f.prior.space!r})"
        )

    # -- fitting -----------------------------------------------------------------
    def fit(
        self,
        X: Any,
        Y: Mapping[str, Any],
        *,
        reference_indices: Sequence[int] | None = None,
    ) -> MetaLatencyPredictor:
        """Meta-train on source devices ``Y`` over architectures ``X``.

        ``reference_indices`` fixes the reference rows instead of designing them
        (e.g. HELP's ten reference architectures, for a like-for-like comparison).
        """
        start = time.perf_counter()
        X = check_features(X)
        n, d = X.shape
        if not isinstance(Y, Mapping) or not Y:
            raise ValueError("Y must be a non-empty dict: device name -> (n_archs,) latencies")
        names = tuple(str(k) for k in Y)
        if len(set(names)) != len(names):
            raise ValueError("Y has duplicate device names")
        lat = np.stack([check_latencies(Y[k], n, name=f"Y[{k!r}]") for k in Y], axis=1)
        if n < 2:
            raise ValueError(f"need at least 2 architectures to fit, got {n}")
        rng = np.random.default_rng(self.seed)
        p = self.params

        mean = X.mean(axis=0)
        scale = X.std(axis=0) if p.standardize else np.ones(d)
        scale[scale == 0] = 1.0  # constant columns carry nothing; keep them finite
        Z = (X - mean) / scale

        priors = {}
        for space in p.target_spaces:
            pairs = [_to_target(lat[:, j], space) for j in range(len(names))]
            T = np.stack([t for t, _ in pairs], axis=1)
            W, b = _ridge_all(Z, T, p.source_alphas)
            scales = np.array([s for _, s in pairs])
            for jitter in p.jitters:
                priors[f"{space}@{jitter:g}"] = _Prior(space, jitter, W, b, scales)

        # Meta-learn the target space and the prior's isotropic part: adapt to
        # each source device in turn, with a prior built from the others only.
        scores: dict[str, float] = {}
        if len(priors) > 1 and len(names) >= 3:
            rows = rng.choice(n, size=min(n, p.episode_rows), replace=False)
            held_out = rng.permutation(len(names))[: p.episode_devices]
            # The same random draws for every candidate (common random numbers):
            # the comparison then sees the candidates' differences, not the draws'.
            k = min(p.n_references, len(rows) - 1)
            draws = [rng.choice(len(rows), k, replace=False) for _ in range(p.episode_draws)]
            for key, prior in priors.items():
                scores[key] = self._episode_score(Z[rows], lat[rows], prior, held_out, draws)
            chosen = max(scores, key=lambda key: scores[key])
        else:
            # Too few devices to hold one out: a sum of layer costs, middle jitter.
            space = "lin" if "lin" in p.target_spaces else p.target_spaces[0]
            chosen = f"{space}@{sorted(p.jitters)[len(p.jitters) // 2]:g}"
        prior = priors[chosen]

        if reference_indices is None:
            refs = np.asarray(self._design_references(Z, prior, exclude=None), dtype=np.int64)
        else:
            refs = np.asarray(reference_indices, dtype=np.int64).reshape(-1)
            if refs.size == 0 or refs.min() < 0 or refs.max() >= n:
                raise ValueError(f"reference_indices must be row indices of X in [0, {n - 1}]")
            if len(set(refs.tolist())) != refs.size:
                raise ValueError("reference_indices must not repeat")

        self._fitted = _Fitted(
            feature_mean=mean,
            feature_scale=scale,
            prior=prior,
            source_devices=names,
            reference_indices=refs,
            reference_features=X[refs].copy(),
            info={
                "n_archs": n,
                "feature_dim": d,
                "n_sources": len(names),
                "target_space": prior.space,
                "jitter": prior.jitter,
                "episode_scores": scores,
                "fit_seconds": round(time.perf_counter() - start, 3),
            },
        )
        return self

    def _design_references(
        self, Z: np.ndarray, prior: _Prior, exclude: int | None, k: int | None = None
    ) -> list[int]:
        p = self.params
        b0, mu, base = prior.moments(exclude)
        mean, cov = _full_prior(b0, mu, base, prior.jitter)
        Za = _augment(Z)
        prior_mean = Za @ mean
        lo, hi = np.quantile(prior_mean, p.candidate_quantiles)
        candidates = np.flatnonzero((prior_mean >= lo) & (prior_mean <= hi))
        if candidates.size < p.n_references:
            candidates = np.arange(Z.shape[0])
        return _design(Za, cov, p.design_noise, k or p.n_references, candidates)

    def _episode_score(
        self,
        Z: np.ndarray,
        lat: np.ndarray,
        prior: _Prior,
        held_out: np.ndarray,
        draws: Sequence[np.ndarray],
    ) -> float:
        """Mean of (Spearman + share within 10%) over leave-one-device-out episodes:
        the first half and all of the designed references, and ``draws`` (random)."""
        p = self.params
        scores = []
        for j in (int(i) for i in held_out):
            refs = self._design_references(Z, prior, exclude=j)
            shots: list[np.ndarray] = [np.asarray(refs[: max(1, len(refs) // 2)]), np.asarray(refs)]
            shots += draws
            moments = prior.moments(exclude=j)
            for rows in shots:
                rest = np.setdiff1d(np.arange(Z.shape[0]), rows)
                model = _adapt_standardised(Z[rows], lat[rows, j], prior, moments, p)
                pred = model.predict_standardised(Z[rest])
                y = lat[rest, j]
                scores.append(0.5 * (spearman_rho(y, pred) + within_tolerance(y, pred, 0.1)))
        return float(np.mean(scores))

    # -- adaptation --------------------------------------------------------------
    def adapt(self, X_ref: Any, y_ref: Any, *, device: str | None = None) -> DeviceLatencyPredictor:
        """Adapt to a new device from its measured latencies ``y_ref`` (ms) on
        architectures ``X_ref`` (usually ``X[reference_indices]``; any rows work,
        more measurements help)."""
        f = self._require_fitted()
        X_ref = check_features(X_ref, self.feature_dim, name="X_ref")
        y_ref = check_latencies(y_ref, X_ref.shape[0], name="y_ref")
        Z = (X_ref - f.feature_mean) / f.feature_scale
        model = _adapt_standardised(Z, y_ref, f.prior, f.prior.moments(), self.params)
        return model.to_device(f.feature_mean, f.feature_scale, device=device)

    def source_predictor(self, device: str) -> DeviceLatencyPredictor:
        """The fitted model of a source (meta-training) device: needs no measurements."""
        f = self._require_fitted()
        if device not in f.source_devices:
            raise ValueError(
                f"unknown device {device!r}: source devices are {list(f.source_devices)}"
            )
        j = f.source_devices.index(device)
        prior = f.prior
        model = _Standardised(
            prior.space,
            float(prior.intercepts[j]),
            prior.weights[j],
            float(prior.scales[j]),
            # lin: 0.1% of the device's median latency keeps predictions positive
            floor=1e-3 * float(prior.scales[j]),
            n=0,
            outliers=(),
        )
        return model.to_device(f.feature_mean, f.feature_scale, device=device)

    # -- accessors ---------------------------------------------------------------
    def _require_fitted(self) -> _Fitted:
        if self._fitted is None:
            raise RuntimeError("MetaLatencyPredictor is not fitted: call fit(X, Y) first")
        return self._fitted

    @property
    def is_fitted(self) -> bool:
        return self._fitted is not None

    @property
    def reference_indices(self) -> np.ndarray:
        """Rows of the ``X`` given to ``fit`` that a new device must measure (<=10,
        most informative first)."""
        return self._require_fitted().reference_indices.copy()

    @property
    def reference_features(self) -> np.ndarray:
        """``X[reference_indices]``, kept so that a loaded model needs no ``X``."""
        return self._require_fitted().reference_features.copy()

    @property
    def source_devices(self) -> tuple[str, ...]:
        return self._require_fitted().source_devices

    @property
    def feature_dim(self) -> int:
        return int(self._require_fitted().feature_mean.shape[0])

    @property
    def target_space(self) -> str:
        return self._require_fitted().prior.space

    @property
    def info(self) -> dict[str, Any]:
        """How the model was fitted (sizes, chosen target space, episode scores, time)."""
        return json.loads(json.dumps(self._require_fitted().info))

    # -- persistence ----------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Serialise (JSON): what a file or a database row stores."""
        f = self._require_fitted()
        payload = {
            "format": _META_FORMAT,
            "format_version": _FORMAT_VERSION,
            "seed": self.seed,
            "params": asdict(self.params),
            "metadata": self.metadata,
            "feature_mean": f.feature_mean.tolist(),
            "feature_scale": f.feature_scale.tolist(),
            "target_space": f.prior.space,
            "jitter": f.prior.jitter,
            "source_devices": list(f.source_devices),
            "source_weights": f.prior.weights.tolist(),
            "source_intercepts": f.prior.intercepts.tolist(),
            "source_scales": f.prior.scales.tolist(),
            "reference_indices": f.reference_indices.tolist(),
            "reference_features": f.reference_features.tolist(),
            "info": f.info,
        }
        return json.dumps(payload).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> MetaLatencyPredictor:
        payload = _load_payload(data, _META_FORMAT, "MetaLatencyPredictor")
        params = MetaParams(**{k: _tuples(v) for k, v in payload["params"].items()})
        model = cls(seed=payload["seed"], params=params, metadata=payload["metadata"])
        d = len(payload["feature_mean"])
        weights = np.asarray(payload["source_weights"], dtype=np.float64).reshape(-1, d)
        model._fitted = _Fitted(
            feature_mean=np.asarray(payload["feature_mean"], dtype=np.float64),
            feature_scale=np.asarray(payload["feature_scale"], dtype=np.float64),
            prior=_Prior(
                payload["target_space"],
                float(payload["jitter"]),
                weights,
                np.asarray(payload["source_intercepts"], dtype=np.float64),
                np.asarray(payload["source_scales"], dtype=np.float64),
            ),
            source_devices=tuple(payload["source_devices"]),
            reference_indices=np.asarray(payload["reference_indices"], dtype=np.int64),
            reference_features=np.asarray(payload["reference_features"], dtype=np.float64).reshape(
                -1, d
            ),
            info=payload["info"],
        )
        return model

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_bytes(self.to_bytes())
        return path

    @classmethod
    def load(cls, path: str | Path) -> MetaLatencyPredictor:
        return cls.from_bytes(Path(path).read_bytes())


# -- the adapted model -----------------------------------------------------------------
@dataclass
class _Standardised:
    """A device model on standardised features (what adaptation produces)."""

    space: str
    intercept: float
    coef: np.ndarray
    scale: float
    floor: float
    n: int
    outliers: tuple[int, ...]

    def predict_standardised(self, Z: np.ndarray) -> np.ndarray:
        return _predict(self.space, self.intercept + Z @ self.coef, self.scale, self.floor)

    def to_device(
        self, mean: np.ndarray, scale: np.ndarray, *, device: str | None
    ) -> DeviceLatencyPredictor:
        coef = self.coef / scale
        return DeviceLatencyPredictor(
            space=self.space,
            intercept=float(self.intercept - mean @ coef),
            coef=coef,
            scale=self.scale,
            floor=self.floor,
            n_measurements=self.n,
            outliers=self.outliers,
            device=device,
        )


def _predict(space: str, f: np.ndarray, scale: float, floor: float) -> np.ndarray:
    if space == "log":
        return np.exp(np.clip(f, -50.0, 50.0))
    return np.maximum(scale * f, floor)


def _adapt_standardised(
    Z: np.ndarray,
    y: np.ndarray,
    prior: _Prior,
    moments: tuple[float, np.ndarray, np.ndarray],
    p: MetaParams,
) -> _Standardised:
    """Posterior-mean weights averaged over the ``(jitter, noise)`` grid, after
    leaving out measurements that are gross outliers under the model."""
    space = prior.space
    b0, mu, base = moments
    Za = _augment(Z)
    if space == "log":
        t, scale = np.log(y), 1.0
    else:
        # Put the device on the sources' normalised scale: its median
        # measurement over the prior's median prediction for the same archs.
        prior_med = float(np.median(Za @ np.r_[b0, mu]))
        scale = float(np.median(y)) / prior_med if prior_med > 0 else float(np.median(y))
        t = y / scale

    keep = np.arange(len(y))
    mean_c, cov_c = _full_prior(b0, mu, base, prior.jitter)
    for _ in range(len(y) // 4 if len(y) >= 4 else 0):
        # Leave-one-out residuals of a Gaussian model in closed form:
        # e_i = [K^-1 r]_i / [K^-1]_ii with predictive variance 1 / [K^-1]_ii.
        r = t[keep] - Za[keep] @ mean_c
        _, K_inv = _posterior(Za[keep], t[keep], mean_c, cov_c, p.design_noise)
        alpha, diag = K_inv @ r, np.diag(K_inv)
        z = np.abs(alpha) / np.sqrt(diag)
        loo = t[keep] - alpha / diag  # each point's prediction from the others
        ratio = np.exp(np.abs(t[keep] - loo)) if space == "log" else _ratio(t[keep], loo)
        # Gross failures only (e.g. 0.01 ms for a 7 ms network): far off in
        # both senses, so that a merely noisy device keeps all its data.
        z[ratio < p.outlier_ratio] = 0.0
        worst = int(np.argmax(z))
        if z[worst] <= p.outlier_z:
            break
        keep = np.delete(keep, worst)
    outliers = tuple(sorted(set(range(len(y))) - set(keep.tolist())))

    w = np.zeros(Za.shape[1])
    for spread in p.jitter_spread:
        mean, cov = _full_prior(b0, mu, base, prior.jitter * spread)
        for noise in p.noise:
            w += _posterior(Za[keep], t[keep], mean, cov, noise)[0]
    w /= len(p.jitter_spread) * len(p.noise)
    floor = 0.01 * float(y[keep].min())
    return _Standardised(space, float(w[0]), w[1:], scale, floor, len(y), outliers)


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """max(a/b, b/a) for positive pairs; infinite when either is not positive."""
    ok = (a > 0) & (b > 0)
    out = np.full(a.shape, np.inf)
    out[ok] = np.maximum(a[ok] / b[ok], b[ok] / a[ok])
    return out


def latency_quality(y_true: Any, y_pred: Any) -> dict[str, float]:
    """Quality of latency predictions: the standard metric set plus the share
    within +-10% of the measurement and the mean absolute percentage error."""
    from predictors.metrics import quality_report

    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    report = quality_report(t, p)
    report["within_10pct"] = within_tolerance(t, p, 0.1)
    report["mape"] = float(np.mean(np.abs(p - t) / np.abs(t)))
    return report


class DeviceLatencyPredictor:
    """Latency model of one device: ``predict(X)`` gives milliseconds.

    A linear model of the encoding in the target space ``space`` (``lin``:
    ``scale * (b + X w)``, floored at 1% of the smallest measurement; ``log``:
    ``exp(b + X w)``). Produced by :meth:`MetaLatencyPredictor.adapt`.
    """

    def __init__(
        self,
        *,
        space: str,
        intercept: float,
        coef: np.ndarray,
        scale: float,
        floor: float,
        n_measurements: int,
        outliers: Sequence[int] = (),
        device: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        if space not in TARGET_SPACES:
            raise ValueError(f"space must be one of {TARGET_SPACES}, got {space!r}")
        self.space = space
        self.intercept = float(intercept)
        self.coef = np.asarray(coef, dtype=np.float64).reshape(-1)
        self.scale = float(scale)
        self.floor = float(floor)
        self.n_measurements = int(n_measurements)
        #: Positions (in the adapt call's order) of measurements left out as outliers.
        self.outliers = tuple(int(i) for i in outliers)
        self.device = device
        self.metadata: dict[str, Any] = dict(metadata or {})

    def __repr__(self) -> str:
        return (
            f"DeviceLatencyPredictor(device={self.device!r}, space={self.space!r}, "
            f"d={self.feature_dim}, n_measurements={self.n_measurements})"
        )

    @property
    def feature_dim(self) -> int:
        return int(self.coef.shape[0])

    def predict(self, X: Any) -> np.ndarray:
        """Predicted latency in ms of each row of ``X`` (``(n, d)``, or one ``(d,)`` row)."""
        X = check_features(X, self.feature_dim)
        return _predict(self.space, self.intercept + X @ self.coef, self.scale, self.floor)

    def evaluate(self, X: Any, y: Any) -> dict[str, float]:
        """:func:`latency_quality` of the predictions for ``X`` against measured ``y`` (ms)."""
        X = check_features(X, self.feature_dim)
        y = check_latencies(y, X.shape[0], name="y")
        return latency_quality(y, self.predict(X))

    # -- persistence ----------------------------------------------------------------
    def to_bytes(self) -> bytes:
        payload = {
            "format": _DEVICE_FORMAT,
            "format_version": _FORMAT_VERSION,
            "space": self.space,
            "intercept": self.intercept,
            "coef": self.coef.tolist(),
            "scale": self.scale,
            "floor": self.floor,
            "n_measurements": self.n_measurements,
            "outliers": list(self.outliers),
            "device": self.device,
            "metadata": self.metadata,
        }
        return json.dumps(payload).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> DeviceLatencyPredictor:
        payload = _load_payload(data, _DEVICE_FORMAT, "DeviceLatencyPredictor")
        return cls(
            space=payload["space"],
            intercept=payload["intercept"],
            coef=np.asarray(payload["coef"], dtype=np.float64),
            scale=payload["scale"],
            floor=payload["floor"],
            n_measurements=payload["n_measurements"],
            outliers=payload["outliers"],
            device=payload["device"],
            metadata=payload["metadata"],
        )

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_bytes(self.to_bytes())
        return path

    @classmethod
    def load(cls, path: str | Path) -> DeviceLatencyPredictor:
        return cls.from_bytes(Path(path).read_bytes())


def _load_payload(data: bytes, fmt: str, what: str) -> dict[str, Any]:
    try:
        payload = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a saved {what}: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise ValueError(f"not a saved {what} (format tag missing)")
    if payload.get("format_version") != _FORMAT_VERSION:
        raise ValueError(
            f"saved {what} has format version {payload.get('format_version')}, "
            f"this hwnas reads version {_FORMAT_VERSION}"
        )
    return payload


def _tuples(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value
