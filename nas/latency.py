"""Latency models as the search loop sees them: one arch at a time, or a batch.

The loop's inner search scores thousands of candidates per round, so latency
must be available in batch. Callers pass whatever they have:

* an object with ``predict_archs(archs) -> ms`` (the fastest path; the
  tabular latency in :mod:`nas.evaluators` has it);
* an object with ``predict(X) -> ms`` over encoded architectures
  (``space.encode_many``), e.g. an adapted ``MetaLatencyPredictor`` device model;
* a plain callable ``arch -> ms`` (a measurement or a per-arch model), called
  once per architecture.

:class:`BatchLatency` wraps any of these behind one interface. A source may set
``measured = True`` to say its numbers are real on-device measurements (a
table of measurements, a profiler); anything else is labelled *predicted* in
the evaluation records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from supernets.spaces import SearchSpace

__all__ = ["BatchLatency", "LatencyLike", "LatencyModel"]


@runtime_checkable
class LatencyModel(Protocol):
    """Minimal protocol: latency in milliseconds of one architecture."""

    def __call__(self, arch: Any) -> float: ...


LatencyLike = LatencyModel | Callable[[Any], float] | Any


class BatchLatency:
    """Uniform batch interface over a latency source (see the module docstring)."""

    def __init__(self, source: LatencyLike, space: SearchSpace[Any], device: str) -> None:
        has_batch = hasattr(source, "predict_archs") or hasattr(source, "predict")
        if not (has_batch or callable(source)):
            raise TypeError(
                f"latency for device {device!r} must be callable (arch -> ms) or have "
                f"predict(X) / predict_archs(archs); got {type(source).__name__}"
            )
        self.source = source
        self.space = space
        self.device = device
        self.measured = bool(getattr(source, "measured", False))

    def predict_archs(self, archs: Sequence[Any]) -> np.ndarray:
        """Latency (ms) of each architecture, shape ``(len(archs),)``."""
        if len(archs) == 0:
            return np.zeros(0)
        if hasattr(self.source, "predict_archs"):
            out = self.source.predict_archs(archs)
        elif hasattr(self.source, "predict"):
            out = self.source.predict(self.space.encode_many(archs))
        else:
            out = [self.source(a) for a in archs]
        values = np.asarray(out, dtype=np.float64).reshape(-1)
        if values.shape[0] != len(archs):
            raise ValueError(
                f"latency model for {self.device!r} returned {values.shape[0]} values "
                f"for {len(archs)} architectures"
            )
        if not np.isfinite(values).all():
            raise ValueError(f"latency model for {self.device!r} returned NaN or inf")
        return values

    def __call__(self, arch: Any) -> float:
        if callable(self.source) and not hasattr(self.source, "predict_archs"):
            return float(self.source(arch))
        return float(self.predict_archs([arch])[0])

    def __repr__(self) -> str:
        kind = "measured" if self.measured else "predicted"
        return f"BatchLatency(device={self.device!r}, {kind}, source={type(self.source).__name__})"
