"""Latency models as the search loop sees them: one arch at a time, or a batch.

The loop's inner search scores thousands of candidates per round, so latency
must be available in batch. Callers pass whatever they have:

* an object with ``predict_archs(archs) -> ms`` (:class:`ArchLatencyModel`;
  the fastest path, the tabular latency in :mod:`nas.evaluators` has it);
* an object with ``predict(X) -> ms`` over encoded architectures
  (``space.encode_many``; :class:`FeatureLatencyModel`), e.g. an adapted
  ``DeviceLatencyPredictor``;
* such an object that also offers ``predict_with_uncertainty(X) -> (mean_ms,
  std_ms)`` (:class:`UncertainLatencyModel`): the loop then treats an
  architecture as feasible only when ``P(latency <= budget)`` reaches
  ``SearchSettings.feasibility_confidence`` (normal one-sided bound
  ``mean + z * std``);
* a plain callable ``arch -> ms`` (:class:`LatencyModel`: a measurement or a
  per-arch model), called once per architecture.

:class:`BatchLatency` wraps any of these behind one interface. A source may set
``measured = True`` to say its numbers are real on-device measurements (a
table of measurements, a profiler); anything else is labelled *predicted* in
the evaluation records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from supernets.spaces import SearchSpace

__all__ = [
    "ArchLatencyModel",
    "BatchLatency",
    "FeatureLatencyModel",
    "LatencyLike",
    "LatencyModel",
    "UncertainLatencyModel",
    "latency_models",
]


@runtime_checkable
class LatencyModel(Protocol):
    """Minimal protocol: latency in milliseconds of one architecture."""

    def __call__(self, arch: Any, /) -> float: ...


@runtime_checkable
class ArchLatencyModel(Protocol):
    """Latency (ms) of a batch of architectures."""

    def predict_archs(self, archs: Sequence[Any]) -> np.ndarray: ...


@runtime_checkable
class FeatureLatencyModel(Protocol):
    """Latency (ms) of a batch of encoded architectures (``space.encode_many``)."""

    def predict(self, X: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class UncertainLatencyModel(Protocol):
    """A feature model that also says how sure it is: per row, the predicted mean
    and the standard deviation of the latency, both in ms."""

    def predict(self, X: np.ndarray) -> np.ndarray: ...

    def predict_with_uncertainty(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


#: Anything :class:`BatchLatency` accepts as a device's latency source.
LatencyLike = LatencyModel | ArchLatencyModel | FeatureLatencyModel | UncertainLatencyModel


class BatchLatency:
    """Uniform batch interface over a latency source (see the module docstring)."""

    def __init__(self, source: LatencyLike, space: SearchSpace[Any], device: str) -> None:
        has_batch = isinstance(source, ArchLatencyModel | FeatureLatencyModel)
        if not (has_batch or callable(source)):
            raise TypeError(
                f"latency for device {device!r} must be callable (arch -> ms) or have "
                f"predict(X) / predict_archs(archs); got {type(source).__name__}"
            )
        self.source = source
        self.space = space
        self.device = device
        self.measured = bool(getattr(source, "measured", False))
        #: True when the source gives a std per prediction (and is not a measurement).
        self.uncertain = isinstance(source, UncertainLatencyModel) and not self.measured

    def predict_archs(self, archs: Sequence[Any]) -> np.ndarray:
        """Latency (ms) of each architecture, shape ``(len(archs),)``."""
        return self.predict_archs_with_std(archs)[0]

    def predict_archs_with_std(self, archs: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """Latency (ms) of each architecture and its std (zeros for a source
        without uncertainty), each of shape ``(len(archs),)``."""
        n = len(archs)
        if n == 0:
            return np.zeros(0), np.zeros(0)
        source = self.source
        out: Any
        std: Any = None
        if self.uncertain:
            assert isinstance(source, UncertainLatencyModel)
            out, std = source.predict_with_uncertainty(self.space.encode_many(archs))
        elif isinstance(source, ArchLatencyModel):
            out = source.predict_archs(archs)
        elif isinstance(source, FeatureLatencyModel):
            out = source.predict(self.space.encode_many(archs))
        else:
            out = [source(a) for a in archs]
        values = self._checked(out, n, "")
        stds = np.zeros(n) if std is None else self._checked(std, n, " std")
        if (stds < 0).any():
            raise ValueError(f"latency model for {self.device!r} returned a negative std")
        return values, stds

    def _checked(self, out: Any, n: int, what: str) -> np.ndarray:
        values = np.asarray(out, dtype=np.float64).reshape(-1)
        if values.shape[0] != n:
            raise ValueError(
                f"latency model for {self.device!r} returned {values.shape[0]}{what} values "
                f"for {n} architectures"
            )
        if not np.isfinite(values).all():
            raise ValueError(f"latency model for {self.device!r} returned NaN or inf{what}")
        return values

    def __call__(self, arch: Any) -> float:
        if callable(self.source) and not isinstance(self.source, ArchLatencyModel):
            return float(self.source(arch))
        return float(self.predict_archs([arch])[0])

    def __repr__(self) -> str:
        kind = "measured" if self.measured else "predicted"
        return f"BatchLatency(device={self.device!r}, {kind}, source={type(self.source).__name__})"


def latency_models(
    latency: LatencyLike | Mapping[str, LatencyLike], space: SearchSpace[Any]
) -> dict[str, BatchLatency]:
    """``{device: BatchLatency}`` from one source or a ``{device: source}`` mapping.
    A single source names its device by a string ``device`` attribute, else
    "latency"."""
    if isinstance(latency, Mapping):
        if not latency:
            raise ValueError("latency mapping is empty: give at least one device")
        return {str(d): BatchLatency(m, space, str(d)) for d, m in latency.items()}
    device = getattr(latency, "device", None)
    device = device if isinstance(device, str) else "latency"
    return {device: BatchLatency(latency, space, device)}
