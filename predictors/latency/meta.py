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
* Transfer to unlike devices: given the space's *shared-cost groups*
  (:mod:`predictors.latency.features`: one kind of operation wherever it
  occurs), the prior also lets a new device price a whole kind differently
  from every source -- few degrees of freedom, which a few measurements pin
  down. ``fit`` picks the scale of that part in the episodes and ``adapt``
  re-picks it per device by leave-one-out error on the device's own
  measurements (a device like the sources keeps the tight prior) -- unless
  the same episodes show that re-picking hurts the source devices beyond
  their noise (then ``fit``'s scale holds for every device).
* Uncertainty: ``adapt`` keeps the posterior covariance (moment-matched over
  the grid), widened by how far the device's own measurements sit from the
  prior (leave-one-out); a factor meta-learned in the same episodes makes
  ``mean + 1.2816 * std`` a calibrated one-sided 90% bound
  (:meth:`DeviceLatencyPredictor.predict_with_uncertainty`).

Measured against HELP, a MAML-trained neural predictor, on HELP's own protocol
in ``benchmarks/results/latency_predictor.md``, and across hardware families in
``benchmarks/results/latency_transfer.md``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from predictors.latency._checks import check_features, check_latencies
from predictors.metrics import spearman_rho, within_tolerance

__all__ = ["DeviceLatencyPredictor", "MetaLatencyPredictor", "MetaParams"]

_META_FORMAT = "hwnas-meta-latency"
_DEVICE_FORMAT = "hwnas-device-latency"
#: Version 2: device models carry their posterior covariance (uncertainty) and
#: meta models their shared-cost groups and calibration; version 1 still loads.
_FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)
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
    #: Candidate prior variances of the shared-cost groups given to ``fit`` (one
    #: cost per kind of operation, wherever it occurs), relative like ``jitters``;
    #: 0 leaves them out. ``fit`` picks one in the same episodes.
    group_scales: tuple[float, ...] = (0.0, 0.03, 0.3, 3.0)
    #: Pseudo-measurements shrinking a device's own residual scale towards 1
    #: (the uncertainty widens for a device its measurements show is unlike the prior).
    calibration_prior_n: float = 5.0
    #: ``adapt`` re-chooses the shared-cost scale among ``group_scales`` per device,
    #: by leave-one-out error on its own measurements (when it has at least
    #: ``groups_min_measurements``); ``fit``'s choice is the default otherwise.
    groups_per_device: bool = True
    groups_min_measurements: int = 4
    #: ``fit`` turns the per-device choice off when, in the same episodes on the
    #: source devices, adapting without it scores better by more than this many
    #: standard errors of the paired per-episode differences (a mechanism stays
    #: unless the sources show, beyond their noise, that it hurts them).
    groups_per_device_z: float = 2.0
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
        if not self.group_scales or min(self.group_scales) < 0:
            raise ValueError("group_scales must be a non-empty list of numbers >= 0")
        object.__setattr__(self, "group_scales", tuple(float(v) for v in self.group_scales))
        if not self.groups_per_device_z >= 0:
            raise ValueError(f"groups_per_device_z must be >= 0, got {self.groups_per_device_z!r}")
        if not self.calibration_prior_n >= 0:
            raise ValueError(f"calibration_prior_n must be >= 0, got {self.calibration_prior_n!r}")
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
    #: Shared-cost directions on standardised features, (d, m); m = 0 for none.
    groups: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    group_scale: float = 0.0  # their prior variance, relative (see MetaParams.group_scales)
    #: ``moments`` results by ``(exclude, group_scale)``: adapt asks for the same
    #: few again and again, and they depend on nothing else (the prior is never
    #: mutated in place: ``replace`` makes a new one, with an empty cache).
    _cache: dict[tuple[int | None, float], tuple[float, np.ndarray, np.ndarray]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def moments(
        self, exclude: int | None = None, group_scale: float | None = None
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """``(intercept mean, weight mean, base covariance)`` from all sources but
        ``exclude``, with the shared-cost part at ``group_scale`` (default: the fitted one).
        The arrays are shared with later calls: callers must not modify them."""
        g = self.group_scale if group_scale is None else group_scale
        key = (exclude, g)
        if key not in self._cache:
            self._cache[key] = self._moments(exclude, g)
        return self._cache[key]

    def _moments(self, exclude: int | None, g: float) -> tuple[float, np.ndarray, np.ndarray]:
        keep = [i for i in range(self.weights.shape[0]) if i != exclude]
        W = self.weights[keep]
        mu = W.mean(axis=0)
        cov = np.cov(W.T, bias=False) if W.shape[0] > 1 else np.zeros((W.shape[1],) * 2)
        base = np.atleast_2d(cov) + np.outer(mu, mu)
        if g > 0 and self.groups.size:
            # A new device may price one kind of operation (a 3x3 conv, a
            # 7x7 kernel, a block's fixed overhead) differently from every
            # source device, wherever it occurs: one shared cost per group,
            # which a few measurements pin down (there are few groups).
            GG = self.groups @ self.groups.T
            d = base.shape[0]
            level = float(np.trace(base)) / d
            base = base + g * level * GG / max(float(np.trace(GG)) / d, 1e-12)
        return float(self.intercepts[keep].mean()), mu, base


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


def _check_groups(groups: Any | None, d: int) -> np.ndarray:
    """``groups`` as a finite ``(d, m)`` array (``(d, 0)`` when None)."""
    if groups is None:
        return np.zeros((d, 0))
    G = np.asarray(groups, dtype=np.float64)
    if G.ndim != 2 or G.shape[0] != d:
        raise ValueError(f"groups must be a (n_features={d}, n_groups) array, got shape {G.shape}")
    if not np.isfinite(G).all():
        raise ValueError("groups must be finite")
    return G


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
    cov[1:, 1:] = base
    diag = np.arange(1, d + 1)
    cov[diag, diag] += jitter * max(scale, 1e-12)
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
    calibration: float = 1.0
    #: Whether ``adapt`` re-chooses the shared-cost scale per device (``fit``
    #: may turn ``MetaParams.groups_per_device`` off for these sources).
    groups_per_device: bool = True
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
        groups: Any | None = None,
    ) -> MetaLatencyPredictor:
        """Meta-train on source devices ``Y`` over architectures ``X``.

        ``reference_indices`` fixes the reference rows instead of designing them
        (e.g. HELP's ten reference architectures, for a like-for-like comparison).
        ``groups`` (``(d, m)``, optional) names shared costs: column ``g`` marks
        the features that are one kind of operation wherever it occurs (see
        :func:`predictors.latency.features.shared_cost_groups`). A device unlike
        every source may price such a kind differently; the prior then lets a few
        measurements move all its columns together (``MetaParams.group_scales``).
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
        G = _check_groups(groups, d) * scale[:, None]  # shared costs, standardised

        priors = {}
        for space in p.target_spaces:
            pairs = [_to_target(lat[:, j], space) for j in range(len(names))]
            T = np.stack([t for t, _ in pairs], axis=1)
            W, b = _ridge_all(Z, T, p.source_alphas)
            scales = np.array([s for _, s in pairs])
            for jitter in p.jitters:
                priors[f"{space}@{jitter:g}"] = _Prior(space, jitter, W, b, scales, G, 0.0)

        # Meta-learn the target space, the prior's isotropic part and then the
        # shared-cost part: adapt to each source device in turn, with a prior
        # built from the others only. Only source devices are read here.
        scores: dict[str, float] = {}
        zs: dict[str, np.ndarray] = {}
        per_episode: dict[str, np.ndarray] = {}
        per_device_groups = p.groups_per_device
        can_learn = len(names) >= 3 and n >= 3
        if can_learn:
            rows = rng.choice(n, size=min(n, p.episode_rows), replace=False)
            held_out = rng.permutation(len(names))[: p.episode_devices]
            # The same random draws for every candidate (common random numbers):
            # the comparison then sees the candidates' differences, not the draws'.
            k = min(p.n_references, len(rows) - 1)
            draws = [rng.choice(len(rows), k, replace=False) for _ in range(p.episode_draws)]

            def run(key: str, prior: _Prior, params: MetaParams = p) -> None:
                per_episode[key], zs[key] = self._episode_scores(
                    Z[rows], lat[rows], prior, held_out, draws, params
                )
                scores[key] = float(np.mean(per_episode[key]))

            for key, prior in priors.items():
                run(key, prior)
            chosen = max(scores, key=lambda key: scores[key])
            if G.size and len(p.group_scales) > 1:
                # second stage (coordinate-wise, to keep fit fast): the group scale
                base_prior = priors[chosen]
                for g in p.group_scales:
                    if g == 0.0:
                        continue
                    key = f"{chosen}+groups@{g:g}"
                    priors[key] = replace(base_prior, group_scale=g)
                    run(key, priors[key])
                chosen = max(scores, key=lambda key: scores[key])
            if G.size and p.groups_per_device and len(p.group_scales) > 1:
                # third stage: does re-choosing the shared-cost scale per device
                # help these sources? Off only if the paired episodes say it
                # hurts beyond their noise.
                key = f"{chosen}, fixed groups"
                run(key, priors[chosen], replace(p, groups_per_device=False))
                diff = per_episode[key] - per_episode[chosen]
                se = float(np.std(diff, ddof=1) / np.sqrt(diff.size)) if diff.size > 1 else 0.0
                if float(np.mean(diff)) > p.groups_per_device_z * se and se > 0:
                    per_device_groups = False
                    zs[chosen] = zs[key]  # calibrate the bound as adapt will run
        else:
            # Too few devices to hold one out: a sum of layer costs, middle jitter.
            space = "lin" if "lin" in p.target_spaces else p.target_spaces[0]
            chosen = f"{space}@{sorted(p.jitters)[len(p.jitters) // 2]:g}"
        prior = priors[chosen]
        # The sd factor that makes the episodes' one-sided 90% bounds hold 90%
        # of the time on the held-out source devices (1 when nothing was held out).
        calibration = 1.0
        if chosen in zs and zs[chosen].size:
            q = float(np.quantile(zs[chosen], 0.9))
            calibration = float(np.clip(q / UPPER_Z, 0.05, 100.0))

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
            calibration=calibration,
            groups_per_device=per_device_groups,
            info={
                "n_archs": n,
                "feature_dim": d,
                "n_sources": len(names),
                "target_space": prior.space,
                "jitter": prior.jitter,
                "n_groups": int(G.shape[1]) if G.size else 0,
                "group_scale": prior.group_scale,
                "groups_per_device": per_device_groups,
                "calibration": calibration,
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

    def _episode_scores(
        self,
        Z: np.ndarray,
        lat: np.ndarray,
        prior: _Prior,
        held_out: np.ndarray,
        draws: Sequence[np.ndarray],
        p: MetaParams,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(Spearman + share within 10%) / 2 of each leave-one-device-out episode:
        the first half and all of the designed references, and ``draws`` (random);
        also every held-out row's standardised residual ``(truth - prediction) / sd``
        in the target space (what the uncertainty is calibrated on)."""
        scores = []
        zs: list[np.ndarray] = []
        for j in (int(i) for i in held_out):
            refs = self._design_references(Z, prior, exclude=j)
            shots: list[np.ndarray] = [np.asarray(refs[: max(1, len(refs) // 2)]), np.asarray(refs)]
            shots += draws
            for rows in shots:
                rest = np.setdiff1d(np.arange(Z.shape[0]), rows)
                model = _adapt_standardised(Z[rows], lat[rows, j], prior, j, p)
                pred = model.predict_standardised(Z[rest])
                y = lat[rest, j]
                scores.append(0.5 * (spearman_rho(y, pred) + within_tolerance(y, pred, 0.1)))
                f = model.intercept + Z[rest] @ model.coef
                truth = np.log(y) if model.space == "log" else y / model.scale
                zs.append((truth - f) / np.maximum(model.target_sd(Z[rest]), 1e-12))
        return np.asarray(scores), np.concatenate(zs) if zs else np.zeros(0)

    # -- adaptation --------------------------------------------------------------
    def adapt(self, X_ref: Any, y_ref: Any, *, device: str | None = None) -> DeviceLatencyPredictor:
        """Adapt to a new device from its measured latencies ``y_ref`` (ms) on
        architectures ``X_ref`` (usually ``X[reference_indices]``; any rows work,
        more measurements help)."""
        f = self._require_fitted()
        X_ref = check_features(X_ref, self.feature_dim, name="X_ref")
        y_ref = check_latencies(y_ref, X_ref.shape[0], name="y_ref")
        Z = (X_ref - f.feature_mean) / f.feature_scale
        params = self.params
        if params.groups_per_device != f.groups_per_device:
            params = replace(params, groups_per_device=f.groups_per_device)
        model = _adapt_standardised(Z, y_ref, f.prior, None, params)
        return model.to_device(
            f.feature_mean, f.feature_scale, device=device, calibration=f.calibration
        )

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
            "groups": f.prior.groups.tolist(),
            "group_scale": f.prior.group_scale,
            "calibration": f.calibration,
            "groups_per_device": f.groups_per_device,
            "info": f.info,
        }
        return json.dumps(payload).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> MetaLatencyPredictor:
        payload = _load_payload(data, _META_FORMAT, "MetaLatencyPredictor")
        _require_keys(
            payload,
            (
                "seed", "params", "metadata", "feature_mean", "feature_scale", "target_space",
                "jitter", "source_devices", "source_weights", "source_intercepts",
                "source_scales", "reference_indices", "reference_features", "info",
            ),
            "MetaLatencyPredictor",
        )  # fmt: skip
        if payload["format_version"] >= 2:
            _require_keys(payload, ("groups", "group_scale", "calibration"), "MetaLatencyPredictor")
        params = MetaParams(**{k: _tuples(v) for k, v in payload["params"].items()})
        model = cls(seed=payload["seed"], params=params, metadata=payload["metadata"])
        d = len(payload["feature_mean"])
        weights = np.asarray(payload["source_weights"], dtype=np.float64).reshape(-1, d)
        # version 1 had no shared-cost groups and no calibration (factor 1)
        groups = np.asarray(payload.get("groups") or np.zeros((d, 0)), dtype=np.float64)
        model._fitted = _Fitted(
            feature_mean=np.asarray(payload["feature_mean"], dtype=np.float64),
            feature_scale=np.asarray(payload["feature_scale"], dtype=np.float64),
            prior=_Prior(
                payload["target_space"],
                float(payload["jitter"]),
                weights,
                np.asarray(payload["source_intercepts"], dtype=np.float64),
                np.asarray(payload["source_scales"], dtype=np.float64),
                groups.reshape(d, -1),
                float(payload.get("group_scale", 0.0)),
            ),
            calibration=float(payload.get("calibration", 1.0)),
            # absent before fit chose it: what the parameters said
            groups_per_device=bool(payload.get("groups_per_device", params.groups_per_device)),
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
    #: Posterior covariance of ``(intercept, coef)`` (None: no uncertainty known).
    cov: np.ndarray | None = None
    noise: float = 0.0
    var_scale: float = 1.0

    def predict_standardised(self, Z: np.ndarray) -> np.ndarray:
        return _predict(self.space, self.intercept + Z @ self.coef, self.scale, self.floor)

    def target_sd(self, Z: np.ndarray) -> np.ndarray:
        """Predictive sd in the target space, before the meta-learned calibration."""
        if self.cov is None:
            raise ValueError("this model carries no uncertainty")
        Za = _augment(Z)
        var = np.einsum("ij,jk,ik->i", Za, self.cov, Za) + self.noise
        return np.sqrt(np.maximum(var, 0.0) * self.var_scale)

    def to_device(
        self, mean: np.ndarray, scale: np.ndarray, *, device: str | None, calibration: float = 1.0
    ) -> DeviceLatencyPredictor:
        coef = self.coef / scale
        cov = None
        if self.cov is not None:
            # z_a = T x_a maps raw features (with the leading 1) to standardised
            # ones, T = [[1, 0], [a, diag(1/scale)]] with a = -mean/scale; the
            # raw covariance T' S T, computed by its blocks in O(d^2)
            a, inv = -mean / scale, 1.0 / scale
            S = self.cov
            M = np.empty_like(S)  # S @ T
            M[:, 0] = S[:, 0] + S[:, 1:] @ a
            M[:, 1:] = S[:, 1:] * inv[None, :]
            cov = np.empty_like(S)  # T' @ M
            cov[0, :] = M[0, :] + a @ M[1:, :]
            cov[1:, :] = inv[:, None] * M[1:, :]
            cov *= self.var_scale  # the device's own residual scale widens both parts
        return DeviceLatencyPredictor(
            space=self.space,
            intercept=float(self.intercept - mean @ coef),
            coef=coef,
            scale=self.scale,
            floor=self.floor,
            n_measurements=self.n,
            outliers=self.outliers,
            device=device,
            posterior_cov=cov,
            noise=self.noise * self.var_scale,
            cov_scale=self.var_scale,
            calibration=calibration,
        )


#: z of the one-sided 90% bound: ``mean + UPPER_Z * std`` is the predicted 90th percentile.
UPPER_Z = 1.2815515655446004


def _mean_std(
    space: str, f: np.ndarray, sd: np.ndarray, scale: float, floor: float
) -> tuple[np.ndarray, np.ndarray]:
    """Latency mean and std (ms) from the target-space prediction ``f`` and its sd.

    ``lin``: Gaussian in ms. ``log``: log-normal; the returned "mean" is the
    median ``exp(f)`` (what :meth:`predict` gives) and the std is chosen so that
    ``mean + UPPER_Z * std`` is exactly the log-normal's 90th percentile: the
    one-sided bound a caller computes keeps its meaning in both spaces."""
    mean = _predict(space, f, scale, floor)
    if space == "log":
        upper = np.exp(np.clip(f + UPPER_Z * sd, -50.0, 50.0))
        return mean, (upper - mean) / UPPER_Z
    return mean, scale * sd


def _predict(space: str, f: np.ndarray, scale: float, floor: float) -> np.ndarray:
    if space == "log":
        return np.exp(np.clip(f, -50.0, 50.0))
    return np.maximum(scale * f, floor)


def _adapt_standardised(
    Z: np.ndarray,
    y: np.ndarray,
    prior: _Prior,
    exclude: int | None,
    p: MetaParams,
) -> _Standardised:
    """Posterior-mean weights averaged over the ``(jitter, noise)`` grid, after
    leaving out measurements that are gross outliers under the model."""
    space = prior.space
    b0, mu, base = prior.moments(exclude)
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
    if p.groups_per_device and prior.groups.size and len(keep) >= p.groups_min_measurements:
        # The fallback for a device unlike the sources: pick the shared-cost
        # prior scale by how well each predicts this device's own measurements
        # (leave-one-out squared error, closed form). A device that the sources
        # already describe keeps a tight prior; one that prices a kind of
        # operation differently gets the freedom to say so.
        best: tuple[float, np.ndarray] | None = None
        for g in p.group_scales:
            _, _, base_g = prior.moments(exclude, g)
            m_g, c_g = _full_prior(b0, mu, base_g, prior.jitter)
            _, K_inv = _posterior(Za[keep], t[keep], m_g, c_g, p.design_noise)
            alpha, diag = K_inv @ (t[keep] - Za[keep] @ m_g), np.diag(K_inv)
            loo_mse = float(np.mean((alpha / diag) ** 2))
            if best is None or loo_mse < best[0]:
                best = (loo_mse, base_g)
        assert best is not None
        base = best[1]

    # The posterior averaged over the (jitter, noise) grid: an equal-weight
    # mixture. Its mean is the prediction; its covariance (moment-matched:
    # average second moment minus the squared mean) and average noise give the
    # predictive spread.
    Zk, tk = Za[keep], t[keep]
    dim = Za.shape[1]
    w, second, noise_avg = np.zeros(dim), np.zeros((dim, dim)), 0.0
    for spread in p.jitter_spread:
        mean, cov = _full_prior(b0, mu, base, prior.jitter * spread)
        for noise in p.noise:
            G = Zk @ cov
            K_inv = np.linalg.inv(G @ Zk.T + noise * np.eye(Zk.shape[0]))
            w_g = mean + G.T @ (K_inv @ (tk - Zk @ mean))
            w += w_g
            second += cov - G.T @ K_inv @ G + np.outer(w_g, w_g)
            noise_avg += noise
    n_grid = len(p.jitter_spread) * len(p.noise)
    w /= n_grid
    post_cov = second / n_grid - np.outer(w, w)
    post_cov = (post_cov + post_cov.T) / 2
    noise_avg /= n_grid

    # How far this device's own measurements sit from what the others predict
    # (leave-one-out, in units of the mixture's predictive sd), shrunk towards
    # 1 by ``calibration_prior_n`` pseudo-measurements: a device unlike every
    # source shows it in its own residuals, and its bounds widen.
    var_scale = 1.0
    if len(keep) >= 2 and p.calibration_prior_n >= 0:
        mean_m, cov_m = _full_prior(b0, mu, base, prior.jitter)
        _, K_inv = _posterior(Zk, tk, mean_m, cov_m, p.design_noise)
        alpha, diag = K_inv @ (tk - Zk @ mean_m), np.diag(K_inv)
        loo_var = 1.0 / diag
        # LOO residual over the *mixture's* LOO spread (prior-level), not only
        # the middle grid point's: the variance the device model reports.
        z2 = (alpha / diag) ** 2 / np.maximum(loo_var, 1e-300)
        var_scale = float((p.calibration_prior_n + z2.sum()) / (p.calibration_prior_n + len(keep)))
    floor = 0.01 * float(y[keep].min())
    return _Standardised(
        space,
        float(w[0]),
        w[1:],
        scale,
        floor,
        len(y),
        outliers,
        cov=post_cov,
        noise=noise_avg,
        var_scale=var_scale,
    )


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
        posterior_cov: np.ndarray | None = None,
        noise: float = 0.0,
        cov_scale: float = 1.0,
        calibration: float = 1.0,
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
        d = self.coef.shape[0]
        #: Posterior covariance of ``(intercept, coef)`` in the target space, already
        #: multiplied by the device's own residual scale ``cov_scale``; ``noise`` is
        #: the measurement-noise variance (same units). None: no uncertainty known
        #: (a source device's model, or one saved before format version 2).
        self.posterior_cov: np.ndarray | None = None
        if posterior_cov is not None:
            cov = np.asarray(posterior_cov, dtype=np.float64)
            if cov.shape != (d + 1, d + 1) or not np.isfinite(cov).all():
                raise ValueError(
                    f"posterior_cov must be a finite ({d + 1}, {d + 1}) matrix, got {cov.shape}"
                )
            self.posterior_cov = cov
        for name, value in (("noise", noise), ("cov_scale", cov_scale)):
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not (np.isfinite(calibration) and calibration > 0):
            raise ValueError(f"calibration must be a finite number > 0, got {calibration!r}")
        self.noise = float(noise)
        self.cov_scale = float(cov_scale)
        #: Meta-learned factor on the sd (leave-one-source-device-out episodes):
        #: makes ``mean + 1.2816 * std`` a 90% bound on devices it was not fitted on.
        self.calibration = float(calibration)

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

    @property
    def has_uncertainty(self) -> bool:
        return self.posterior_cov is not None

    def predict_with_uncertainty(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(mean_ms, std_ms)`` per row of ``X``: ``mean_ms`` is :meth:`predict`,
        and ``mean_ms + 1.2816 * std_ms`` is a one-sided 90% upper bound on the
        latency (calibrated on held-out source devices at fit time; see
        ``benchmarks/results/latency_transfer.md`` for how often it holds on
        unseen devices). ``std_ms`` grows for architectures unlike the measured
        ones and for devices whose measurements disagree with the prior."""
        if self.posterior_cov is None:
            raise ValueError(
                "this device model carries no uncertainty (a source device's model, or one "
                "saved before format version 2): adapt it again from its measurements"
            )
        X = check_features(X, self.feature_dim)
        Xa = _augment(X)
        var = np.einsum("ij,jk,ik->i", Xa, self.posterior_cov, Xa) + self.noise
        sd = self.calibration * np.sqrt(np.maximum(var, 0.0))
        return _mean_std(self.space, self.intercept + X @ self.coef, sd, self.scale, self.floor)

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
            "posterior_cov": None if self.posterior_cov is None else self.posterior_cov.tolist(),
            "noise": self.noise,
            "cov_scale": self.cov_scale,
            "calibration": self.calibration,
        }
        return json.dumps(payload).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> DeviceLatencyPredictor:
        """Load a saved model: format version 2, or version 1 (no uncertainty:
        :meth:`predict` works, :meth:`predict_with_uncertainty` asks for a re-adapt)."""
        payload = _load_payload(data, _DEVICE_FORMAT, "DeviceLatencyPredictor")
        _require_keys(
            payload,
            ("space", "intercept", "coef", "scale", "floor", "n_measurements", "outliers"),
            "DeviceLatencyPredictor",
        )
        extra: dict[str, Any] = {}
        if payload["format_version"] >= 2:
            _require_keys(
                payload,
                ("posterior_cov", "noise", "cov_scale", "calibration"),
                "DeviceLatencyPredictor",
            )
            cov = payload["posterior_cov"]
            extra = {
                "posterior_cov": None if cov is None else np.asarray(cov, dtype=np.float64),
                "noise": float(payload["noise"]),
                "cov_scale": float(payload["cov_scale"]),
                "calibration": float(payload["calibration"]),
            }
        try:
            return cls(
                space=payload["space"],
                intercept=payload["intercept"],
                coef=np.asarray(payload["coef"], dtype=np.float64),
                scale=payload["scale"],
                floor=payload["floor"],
                n_measurements=payload["n_measurements"],
                outliers=payload["outliers"],
                device=payload.get("device"),
                metadata=payload.get("metadata") or {},
                **extra,
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"saved DeviceLatencyPredictor is malformed: {exc}") from None

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
    version = payload.get("format_version")
    if version not in _READABLE_VERSIONS:
        raise ValueError(
            f"saved {what} has format version {version!r}; this hwnas reads versions "
            f"{list(_READABLE_VERSIONS)} (a newer hwnas wrote it? upgrade hwnas)"
        )
    return payload


def _require_keys(payload: Mapping[str, Any], keys: Sequence[str], what: str) -> None:
    missing = [k for k in keys if k not in payload]
    if missing:
        raise ValueError(
            f"saved {what} (format version {payload.get('format_version')}) lacks "
            f"field(s) {missing}: the file is truncated or was not written by hwnas"
        )


def _tuples(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value
