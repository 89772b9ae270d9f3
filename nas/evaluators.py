"""Evaluators: where a real evaluation's accuracy comes from.

* :class:`TabularEvaluator` — NAS-Bench-201 from the bundled tables: accuracy
  is the CIFAR-10 test accuracy after 200 epochs (mean over seeds), latency is
  a real measurement on one of 27 devices. Zero training: benchmarks and demos.
* :class:`SupernetEvaluator` — a weight-sharing supernet: extract the subnet,
  recalibrate BatchNorm, measure holdout accuracy (thin adapter over
  :mod:`supernets`; see its docstring).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from supernets.spaces import NB201Arch, NB201Space, SearchSpace

if TYPE_CHECKING:  # torch-backed: imported only when a supernet is evaluated
    from supernets.data import ImageDataset
    from supernets.evaluate import SubnetEvaluation
    from supernets.networks import OFAMobileNetV3
    from supernets.spaces import OFAArch

__all__ = ["SupernetEvaluator", "TabularEvaluator", "TabularLatency"]


def _nb201(space: SearchSpace[Any] | str) -> NB201Space:
    if isinstance(space, str):
        from supernets import get_space

        space = get_space(space)
    if not isinstance(space, NB201Space):
        raise ValueError(f"tabular evaluation exists for the nb201 space only, got {space.name!r}")
    return space


class TabularLatency:
    """Measured latency (ms) of NAS-Bench-201 cells on one device, from the bundled table.

    ``measured = True``: the numbers are real measurements, and evaluation
    records say so.
    """

    measured = True

    def __init__(self, device: str, space: SearchSpace[Any] | str = "nb201") -> None:
        from supernets.tables import nb201_latency

        self.space = _nb201(space)
        table = nb201_latency()
        if device not in table.latency:
            raise ValueError(f"unknown device {device!r}; the table has {sorted(table.devices)}")
        self.device = device
        values = np.empty(len(table.arch_ids))
        values[table.arch_ids] = table.latency[device]
        self.values = values  # by official index

    def __call__(self, arch: NB201Arch) -> float:
        return float(self.values[self.space.index(arch)])

    def predict_archs(self, archs: Sequence[NB201Arch]) -> np.ndarray:
        return self.values[[self.space.index(a) for a in archs]]

    def __repr__(self) -> str:
        return f"TabularLatency(device={self.device!r})"


class TabularEvaluator:
    """Real evaluation of NAS-Bench-201 cells from the bundled CIFAR-10 table.

    >>> ev = TabularEvaluator()                                    # doctest: +SKIP
    >>> run_search(ev.space, ev, ev.latency("pixel3"), 10.0, 100)  # doctest: +SKIP
    """

    def __init__(self, space: SearchSpace[Any] | str = "nb201") -> None:
        from supernets.tables import nb201_accuracy

        self.space = _nb201(space)
        self._accuracy = nb201_accuracy()

    def __call__(self, arch: NB201Arch | Mapping[str, Any] | str) -> float:
        return float(self._accuracy[str(self.space.validate(arch))])

    def accuracy_many(self, archs: Sequence[NB201Arch]) -> np.ndarray:
        return np.array([self(a) for a in archs], dtype=np.float64)

    def latency(self, device: str) -> TabularLatency:
        return TabularLatency(device, self.space)

    @property
    def devices(self) -> list[str]:
        from supernets.tables import nb201_latency

        return nb201_latency().devices

    @cached_property
    def all_accuracy(self) -> np.ndarray:
        """Accuracy of every cell, by official index."""
        return self.accuracy_many(self.space.all_archs())

    def oracle(self, device: str, budget_ms: float) -> tuple[NB201Arch, float]:
        """Best architecture (and its accuracy) with latency <= ``budget_ms``: the
        ground truth a search is scored against. Raises if nothing is feasible."""
        lat = self.latency(device).values
        feasible = np.flatnonzero(lat <= budget_ms)
        if feasible.size == 0:
            raise ValueError(f"no cell runs within {budget_ms} ms on {device!r}")
        best = int(feasible[np.argmax(self.all_accuracy[feasible])])
        return self.space.from_index(best), float(self.all_accuracy[best])


class SupernetEvaluator:
    """Real evaluation with a trained weight-sharing supernet.

    ``evaluator(arch)`` extracts the subnet, recalibrates its BatchNorm on
    ``n_calibration`` training images at the subnet's resolution and returns
    its holdout accuracy in percent (the same scale as the tabular evaluator).
    All the work is :func:`supernets.evaluate_subnet`; this class only binds
    the supernet, the dataset and the settings, and keeps the last details.
    """

    def __init__(
        self,
        supernet: OFAMobileNetV3,
        dataset: ImageDataset,
        *,
        n_calibration: int | None = None,
        batch_size: int = 200,
        seed: int = 0,
    ) -> None:
        from supernets.evaluate import DEFAULT_CALIBRATION_IMAGES

        self.supernet = supernet
        self.dataset = dataset
        self.space = supernet.space
        self.n_calibration = DEFAULT_CALIBRATION_IMAGES if n_calibration is None else n_calibration
        self.batch_size = batch_size
        self.seed = seed
        #: The last :class:`supernets.evaluate.SubnetEvaluation` (holdout size, resolution).
        self.last: SubnetEvaluation | None = None

    @classmethod
    def from_checkpoint(
        cls, checkpoint: str | os.PathLike[str], map_location: str = "cpu", **kwargs: Any
    ) -> SupernetEvaluator:
        """Evaluator for a trained run (directory or ``.pt`` file) on the dataset
        split it was trained with (:func:`supernets.train.load_supernet`)."""
        from supernets.data import load_dataset
        from supernets.train import load_supernet

        _, supernet, metadata = load_supernet(checkpoint, map_location=map_location)
        return cls(supernet, load_dataset(metadata["dataset"]), **kwargs)

    def __call__(self, arch: OFAArch | Mapping[str, Any] | str) -> float:
        from supernets.evaluate import evaluate_subnet

        self.last = evaluate_subnet(
            self.supernet,
            arch,
            self.dataset,
            n_calibration=self.n_calibration,
            batch_size=self.batch_size,
            seed=self.seed,
        )
        return float(self.last.accuracy)  # already percent, as every accuracy in hwnas
