"""The plotting module: PNG files from plain numbers, with clear input errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nas.plots import plot_best_vs_evaluations, plot_latency_agreement, plot_pareto

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _pixels(path: Path) -> np.ndarray:
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.int16)


def _reddish(px: np.ndarray) -> int:
    """Pixels of matplotlib's tab:red (the budget line)."""
    return int(((px[..., 0] > 180) & (px[..., 1] < 60) & (px[..., 2] < 60)).sum())


def test_pareto_plot_draws_the_budget_and_the_chosen_subnet(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    lat = rng.uniform(1, 10, 40)
    acc = 60 + 3 * np.log(lat) + rng.normal(0, 1, 40)
    plain = _pixels(plot_pareto(lat, acc, tmp_path / "plain.png"))
    budget = _pixels(plot_pareto(lat, acc, tmp_path / "b.png", budget_ms=5.0))
    chosen = _pixels(plot_pareto(lat, acc, tmp_path / "c.png", budget_ms=5.0, chosen=3))
    assert plain.shape == budget.shape and plain.shape[0] > 300
    assert _reddish(budget) > _reddish(plain) + 100  # a dashed red line appeared
    assert (chosen != budget).any()
    # A nested output directory is created.
    assert plot_pareto(lat, acc, tmp_path / "sub" / "dir" / "p.png").is_file()


def test_best_vs_evaluations_and_latency_agreement(tmp_path: Path) -> None:
    acc = np.array([50.0, 70.0, 65.0, 80.0, 75.0])
    feasible = np.array([True, True, True, False, True])
    path = plot_best_vs_evaluations(acc, tmp_path / "best.png", feasible=feasible)
    assert _pixels(path).shape[0] > 300
    pred = np.array([1.0, 2.0, 3.1, 4.4])
    meas = np.array([1.1, 2.0, 3.0, 4.0])
    assert _pixels(plot_latency_agreement(pred, meas, tmp_path / "lat.png")).shape[0] > 300


def test_plots_reject_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="percent"):
        plot_pareto([1.0, 2.0], [50.0, 120.0], tmp_path / "x.png", budget_ms=1.5)
    with pytest.raises(ValueError, match="equal length"):
        plot_pareto([1.0, 2.0], [50.0], tmp_path / "x.png")
    with pytest.raises(ValueError, match="PNG"):
        plot_pareto([1.0], [50.0], tmp_path / "x.jpg")
    with pytest.raises(ValueError, match="chosen"):
        plot_pareto([1.0], [50.0], tmp_path / "x.png", chosen=4)
    with pytest.raises(ValueError, match="feasible"):
        plot_best_vs_evaluations([50.0, 60.0], tmp_path / "x.png", feasible=[True])
    with pytest.raises(ValueError, match="non-empty"):
        plot_best_vs_evaluations([], tmp_path / "x.png")
    with pytest.raises(ValueError, match="positive"):
        plot_latency_agreement([1.0, -1.0], [1.0, 1.0], tmp_path / "x.png")
