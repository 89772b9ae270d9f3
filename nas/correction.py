"""Online correction of a device's latency model from a few true measurements.

A few-shot latency model errs in two ways on a new device: by a factor common
to every architecture (the device is faster or slower than the model thinks)
and locally (architectures that share operations share the error; on some
devices whole families of cells have the same true latency). A single
correction factor captures only the first, so after measuring one architecture
over the budget, its near-identical neighbours still look like coin flips and
measurements are spent on them one by one.

:class:`LatencyCorrection` models the log residual ``log(measured /
predicted)`` as a Gaussian process over the architecture encoding whose prior
sd at each architecture is the model's own relative sd (``std / mean``; where
the model gives none, :data:`PRIOR_RELATIVE_SD`), with correlation

    rho(x, x') = common_share + (1 - common_share) * exp(-d(x, x') / length_scale)

(``d`` = half the squared distance of the encodings: on one-hot encodings, the
number of choices in which two architectures differ). Without measurements it
changes nothing; each measurement moves the prediction of every architecture
(by ``common_share``) and of its neighbours more, and shrinks their std. The
posterior is closed form over at most a few dozen measurements.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "DEFAULT_CORRECTION_COMMON_SHARE",
    "DEFAULT_CORRECTION_LENGTH_SCALE",
    "PRIOR_RELATIVE_SD",
    "LatencyCorrection",
]

#: Share of a latency model's error common to every architecture of a device
#: (chosen on HELP's train devices, see ``SearchSettings``).
DEFAULT_CORRECTION_COMMON_SHARE = 0.6
#: Distance (differing choices) over which the local part of the error decays by e.
DEFAULT_CORRECTION_LENGTH_SCALE = 0.5
#: Relative sd of the error of a model that reports no uncertainty.
PRIOR_RELATIVE_SD = 0.1
#: Variance (log units) of a latency measurement's own noise (~1%).
MEASUREMENT_VARIANCE = 1e-4


def _relative_sd(latency: np.ndarray, std: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where((latency > 0) & (std > 0), std / latency, PRIOR_RELATIVE_SD)
    return np.where(np.isfinite(rel), rel, PRIOR_RELATIVE_SD)


@dataclass(frozen=True)
class LatencyCorrection:
    """The posterior of one device's log-residual process given its measurements.

    Build it with :meth:`fit`; :meth:`apply` corrects predictions. An unfitted
    correction (no measurements) is the identity."""

    common_share: float = DEFAULT_CORRECTION_COMMON_SHARE
    length_scale: float = DEFAULT_CORRECTION_LENGTH_SCALE
    X: np.ndarray | None = None
    rel_sd: np.ndarray | None = None
    #: ``K^-1`` of the measurements and ``K^-1 r`` (their weights in the mean).
    K_inv: np.ndarray | None = None
    alpha: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not (0.0 <= self.common_share <= 1.0):
            raise ValueError(f"common_share must be in [0, 1], got {self.common_share!r}")
        if not (np.isfinite(self.length_scale) and self.length_scale > 0):
            raise ValueError(f"length_scale must be > 0, got {self.length_scale!r}")

    def _corr(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        # Half squared distances via the Gram matrix: (n, m) without an (n, m, d) array.
        sq = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * (A @ B.T)
        d = np.maximum(sq, 0.0) / 2.0
        return self.common_share + (1.0 - self.common_share) * np.exp(-d / self.length_scale)

    def fit(
        self, X: np.ndarray, predicted: np.ndarray, std: np.ndarray, measured: np.ndarray
    ) -> LatencyCorrection:
        """The correction given measured latencies of the architectures encoded
        as ``X`` (``(m, d)``), the model's ``predicted`` latency and ``std`` for
        them (ms) and the ``measured`` latency (ms, > 0)."""
        predicted, measured = np.asarray(predicted, float), np.asarray(measured, float)
        if len(measured) == 0:
            return LatencyCorrection(self.common_share, self.length_scale)
        X = np.asarray(X, dtype=np.float64).reshape(len(measured), -1)
        if not ((predicted > 0).all() and (measured > 0).all()):
            raise ValueError("latencies to correct from must be positive")
        s = _relative_sd(predicted, np.asarray(std, float))
        K = s[:, None] * s[None, :] * self._corr(X, X)
        K_inv = np.linalg.inv(K + MEASUREMENT_VARIANCE * np.eye(len(s)))
        r = np.log(measured / predicted)
        return LatencyCorrection(self.common_share, self.length_scale, X, s, K_inv, K_inv @ r)

    @property
    def fitted(self) -> bool:
        return self.alpha is not None

    def apply(
        self, X: np.ndarray, latency: np.ndarray, std: np.ndarray, *, uncertain: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Corrected ``(latency, std)`` (ms) of the architectures encoded as ``X``.
        With ``uncertain=False`` (a model without std) only the latency moves."""
        if self.X is None or self.K_inv is None or self.alpha is None or self.rel_sd is None:
            return latency, std
        X = np.asarray(X, dtype=np.float64)
        s = _relative_sd(latency, std)
        k = s[:, None] * self.rel_sd[None, :] * self._corr(X, self.X)
        mean = k @ self.alpha
        corrected = latency * np.exp(mean)
        if not uncertain:
            return corrected, std
        var = s**2 - np.einsum("ij,jk,ik->i", k, self.K_inv, k)
        return corrected, corrected * np.sqrt(np.maximum(var, 0.0))
