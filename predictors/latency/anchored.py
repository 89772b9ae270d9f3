"""Latency measurements anchored to a device's registration.

A device's latency model is adapted from measurements taken when it was
registered. Measured again minutes later on a shared machine, the same
network can run 20-40 % slower or faster because other processes came or
went: comparing such a measurement with the model's prediction mixes the
model's error with the machine's drift.

:func:`measure_anchored` measures the wanted networks together with a few
*anchors* -- architectures whose latency was measured at registration --
interleaved in rounds, so that whatever load there is falls on both alike.
The ratio of each anchor's latency now to its latency then is the drift; a
network's latency at the registration's conditions is its raw latency divided
by the drift (geometric mean over the anchors). When the anchors disagree
about the drift, or single timings scatter widely, the machine is too noisy
to measure: the result says so in ``warnings`` (and the figures should not
be trusted).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from predictors.latency.measure import DeviceSpec, LatencyMeasurement

__all__ = [
    "MAX_ANCHOR_DISAGREEMENT",
    "MAX_RELATIVE_SPREAD",
    "AnchoredMeasurement",
    "choose_anchors",
    "measure_anchored",
    "noise_warnings",
]

#: Above this IQR / median, single timings scatter too much for a median to
#: be trusted to a few percent (the machine's load changed within the run).
MAX_RELATIVE_SPREAD = 0.25
#: Above this (largest anchor ratio / smallest - 1) the anchors disagree
#: about the drift: load did not slow every network alike, so dividing by
#: the drift does not undo it.
MAX_ANCHOR_DISAGREEMENT = 0.15


@dataclass(frozen=True)
class AnchoredMeasurement:
    """One network's latency, raw and at the registration's conditions."""

    #: The raw measurement of the network (this run, this load).
    measurement: LatencyMeasurement
    #: Anchor latency now / at registration, geometric mean over the anchors.
    drift: float
    #: Each anchor's ratio, in anchor order.
    anchor_ratios: tuple[float, ...]
    #: Why the figure should not be trusted (empty: the machine was quiet enough).
    warnings: tuple[str, ...] = ()

    @property
    def raw_ms(self) -> float:
        return self.measurement.median_ms

    @property
    def latency_ms(self) -> float:
        """The raw median divided by the drift: what the network would have
        measured when the device was registered."""
        return self.measurement.median_ms / self.drift

    @property
    def noisy(self) -> bool:
        return bool(self.warnings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "raw_ms": self.raw_ms,
            "drift": self.drift,
            "anchor_ratios": list(self.anchor_ratios),
            "warnings": list(self.warnings),
        }


def choose_anchors(measured: Sequence[tuple[Any, float]], n: int = 3) -> list[tuple[Any, float]]:
    """``n`` of the ``(arch, ms)`` registration measurements spread over their
    latency range (the fastest, the slowest, evenly between): drift from load
    does not slow small and large networks alike, so the anchors cover both."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    ordered = sorted(measured, key=lambda pair: pair[1])
    if len(ordered) <= n:
        return list(ordered)
    if n == 1:
        return [ordered[len(ordered) // 2]]
    picks = sorted({round(i * (len(ordered) - 1) / (n - 1)) for i in range(n)})
    return [ordered[i] for i in picks]


def noise_warnings(
    measurements: Sequence[LatencyMeasurement], anchor_ratios: Sequence[float]
) -> list[str]:
    """Why a set of measurements taken together is too noisy to trust (empty: it is not)."""
    out = []
    # The typical network's scatter, not the worst one's: a single burst of
    # load widens one network's spread while its median (what is used) holds.
    spread = statistics.median(m.relative_spread for m in measurements) if measurements else 0.0
    if spread > MAX_RELATIVE_SPREAD:
        out.append(
            f"single timings scatter by {100 * spread:.0f}% of the median "
            f"(IQR/median of the typical network, limit {100 * MAX_RELATIVE_SPREAD:.0f}%)"
        )
    if len(anchor_ratios) >= 2:
        disagreement = max(anchor_ratios) / min(anchor_ratios) - 1
        if disagreement > MAX_ANCHOR_DISAGREEMENT:
            out.append(
                f"the reference anchors disagree about the machine's drift by "
                f"{100 * disagreement:.0f}% (limit {100 * MAX_ANCHOR_DISAGREEMENT:.0f}%)"
            )
    return out


def measure_anchored(
    space: Any,
    archs: Sequence[Any],
    anchors: Sequence[tuple[Any, float]],
    device: DeviceSpec | None = None,
    *,
    n_classes: int | None = None,
    warmup: int = 10,
    repeats: int = 30,
    rounds: int = 5,
) -> list[AnchoredMeasurement]:
    """Measure ``archs`` interleaved with ``anchors`` (``(arch, ms at
    registration)`` pairs, e.g. from :func:`choose_anchors`) and express each
    at the registration's conditions (module docstring). Without anchors the
    drift is 1 and the latency is the raw one."""
    from predictors.latency.registration import measure_archs

    for _, ms in anchors:
        if not (ms > 0 and math.isfinite(ms)):
            raise ValueError(f"an anchor's registered latency must be positive, got {ms}")
    measured = measure_archs(
        space,
        [*archs, *(arch for arch, _ in anchors)],
        device,
        n_classes=n_classes,
        warmup=warmup,
        repeats=repeats,
        rounds=rounds,
    )
    wanted, now = measured[: len(archs)], measured[len(archs) :]
    ratios = tuple(m.median_ms / ms for m, (_, ms) in zip(now, anchors, strict=True))
    drift = math.exp(sum(math.log(r) for r in ratios) / len(ratios)) if ratios else 1.0
    return [
        AnchoredMeasurement(m, drift, ratios, tuple(noise_warnings([m, *now], ratios)))
        for m in wanted
    ]
