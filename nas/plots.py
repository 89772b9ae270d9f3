"""The plots of a search, as PNG files: one module for the CLI, the service and
the benchmarks.

Pure functions: each takes plain numbers (accuracy in percent, latency in
ms), writes one PNG with matplotlib's Agg backend (no display needed, safe in
workers and threads) and returns its path. The Pareto front is
:func:`nas.pareto.pareto_front`'s -- the plots draw the library's rule, they
do not re-implement it.

* :func:`plot_pareto` -- every real evaluation, the accuracy/latency front,
  the latency budget and the chosen subnet;
* :func:`plot_best_vs_evaluations` -- best accuracy under the budget after
  each real evaluation (how fast the search found it);
* :func:`plot_latency_agreement` -- predicted against measured latency, with
  the median relative error.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.pareto import pareto_front

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_best_vs_evaluations", "plot_latency_agreement", "plot_pareto"]

_DEVICE = "device"  # the one device of the records handed to pareto_front


def _figure(size: tuple[float, float] = (6.4, 4.4)) -> Figure:
    # The object-oriented API without pyplot: no global figure registry, no
    # GUI backend, nothing to close -- safe in a worker thread.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    out = Path(path)
    if out.suffix.lower() != ".png":
        raise ValueError(f"plots are written as PNG: {str(out)!r} does not end in .png")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, format="png")
    return out


def _pairs(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, names: tuple[str, str]
) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must be 1-D and of equal length, "
            f"got shapes {x.shape} and {y.shape}"
        )
    if x.size == 0:
        raise ValueError(f"nothing to plot: {names[0]} is empty")
    return x, y


def _check_percent(accuracy: np.ndarray) -> None:
    finite = accuracy[np.isfinite(accuracy)]
    if finite.size and (finite.min() < 0 or finite.max() > 100):
        raise ValueError("accuracy must be in percent (0-100)")


def plot_pareto(
    latency_ms: Sequence[float] | np.ndarray,
    accuracy: Sequence[float] | np.ndarray,
    path: str | os.PathLike[str],
    *,
    budget_ms: float | None = None,
    chosen: int | None = None,
    title: str = "accuracy vs latency",
) -> Path:
    """Scatter of real evaluations with their Pareto front, the budget line
    and the ``chosen`` evaluation (an index) marked."""
    lat, acc = _pairs(latency_ms, accuracy, ("latency_ms", "accuracy"))
    _check_percent(acc)
    records: list[dict[str, Any]] = [
        {"i": i, "accuracy": float(a), "latency_ms": {_DEVICE: float(la)}}
        for i, (la, a) in enumerate(zip(lat, acc, strict=True))
    ]
    front = [int(r["i"]) for r in pareto_front(records, _DEVICE)]
    fig = _figure()
    ax = fig.add_subplot()
    ax.scatter(lat, acc, s=14, color="tab:blue", alpha=0.45, label="real evaluations")
    if front:
        ax.step(lat[front], acc[front], where="post", color="tab:orange", lw=1.6)
        ax.scatter(lat[front], acc[front], s=26, color="tab:orange", label="Pareto front")
    if budget_ms is not None:
        ax.axvline(budget_ms, color="tab:red", ls="--", lw=1.2, label=f"budget {budget_ms:g} ms")
    if chosen is not None:
        if not 0 <= chosen < lat.size:
            raise ValueError(f"chosen must index the evaluations (0..{lat.size - 1})")
        ax.scatter(
            [lat[chosen]], [acc[chosen]], s=160, marker="*", color="tab:green",
            zorder=5, label="chosen",
        )  # fmt: skip
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("holdout accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def plot_best_vs_evaluations(
    accuracy: Sequence[float] | np.ndarray,
    path: str | os.PathLike[str],
    *,
    feasible: Sequence[bool] | np.ndarray | None = None,
    title: str = "best accuracy vs real evaluations",
) -> Path:
    """Best accuracy so far among feasible evaluations (all, when ``feasible``
    is None), in evaluation order; infeasible ones are drawn faintly."""
    acc = np.asarray(accuracy, dtype=float)
    if acc.ndim != 1 or acc.size == 0:
        raise ValueError("accuracy must be a non-empty 1-D sequence")
    _check_percent(acc)
    ok = np.ones(acc.size, dtype=bool) if feasible is None else np.asarray(feasible, dtype=bool)
    if ok.shape != acc.shape:
        raise ValueError(f"feasible must have {acc.size} entries, got {ok.size}")
    masked = np.where(ok, acc, -np.inf)
    best = np.maximum.accumulate(masked)
    n = np.arange(1, acc.size + 1)
    fig = _figure()
    ax = fig.add_subplot()
    ax.scatter(n[ok], acc[ok], s=12, color="tab:blue", alpha=0.5, label="feasible evaluation")
    if (~ok).any():
        ax.scatter(n[~ok], acc[~ok], s=10, color="grey", alpha=0.3, label="over budget")
    shown = np.isfinite(best)
    ax.step(n[shown], best[shown], where="post", color="tab:orange", lw=1.8, label="best so far")
    ax.set_xlabel("real evaluations")
    ax.set_ylabel("holdout accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def plot_latency_agreement(
    predicted_ms: Sequence[float] | np.ndarray,
    measured_ms: Sequence[float] | np.ndarray,
    path: str | os.PathLike[str],
    *,
    title: str = "predicted vs measured latency",
) -> Path:
    """Predicted against measured latency with the y = x line, a ±15 % band
    and the median relative error in the title."""
    pred, meas = _pairs(predicted_ms, measured_ms, ("predicted_ms", "measured_ms"))
    if (meas <= 0).any() or (pred <= 0).any():
        raise ValueError("latencies must be positive")
    err = float(np.median(np.abs(pred - meas) / meas))
    lo, hi = float(min(pred.min(), meas.min())) * 0.9, float(max(pred.max(), meas.max())) * 1.1
    line = np.array([lo, hi])
    fig = _figure((5.2, 4.8))
    ax = fig.add_subplot()
    ax.fill_between(line, line * 0.85, line * 1.15, color="tab:green", alpha=0.12, label="±15 %")
    ax.plot(line, line, color="grey", lw=1.0)
    ax.scatter(meas, pred, s=18, color="tab:blue")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("measured latency (ms)")
    ax.set_ylabel("predicted latency (ms)")
    ax.set_title(f"{title}\nmedian error {100 * err:.1f}% over {pred.size}")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)
