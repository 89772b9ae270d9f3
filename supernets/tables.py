"""Real measurements shipped with hwnas (copied from the project's shared data).

* NAS-Bench-201: latency of all 15,625 cells on 27 devices, CIFAR-10 accuracy,
  and HELP's device split with its 10 hardware-embedding architectures.
* OFA-MobileNetV3: 5,000 configs with latency on 12 GPU settings, and HELP's split.

Everything is loaded lazily and cached per process (the tables are read-only).
The files are gzip-compressed CSV / JSON under ``supernets/data``.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

__all__ = [
    "DeviceSplit",
    "LatencyTable",
    "nb201_accuracy",
    "nb201_latency",
    "nb201_split",
    "ofa_mbv3_archs",
    "ofa_mbv3_latency",
    "ofa_mbv3_split",
]


@dataclass(frozen=True)
class LatencyTable:
    """Latency (ms) of ``n_archs`` architectures on several devices.

    ``latency[device]`` is an ``(n_archs,)`` float array aligned with ``arch_ids``.
    """

    arch_ids: np.ndarray
    arch_strs: tuple[str, ...] | None
    latency: dict[str, np.ndarray]

    @property
    def devices(self) -> list[str]:
        return list(self.latency)


@dataclass(frozen=True)
class DeviceSplit:
    """HELP's meta-train / meta-valid / meta-test devices and reference archs."""

    train: tuple[str, ...]
    valid: tuple[str, ...]
    test: tuple[str, ...]
    reference_arch_idx: tuple[int, ...]


def _read_bytes(*parts: str) -> bytes:
    path = resources.files("supernets").joinpath("data", *parts)
    data = path.read_bytes()
    return gzip.decompress(data) if parts[-1].endswith(".gz") else data


def _read_csv(*parts: str) -> tuple[list[str], list[list[str]]]:
    reader = csv.reader(io.StringIO(_read_bytes(*parts).decode("utf-8")))
    header = next(reader)
    return header, [row for row in reader if row]


def _latency_table(*parts: str, has_str: bool) -> LatencyTable:
    header, rows = _read_csv(*parts)
    first = 2 if has_str else 1
    ids = np.array([int(r[0]) for r in rows], dtype=np.int64)
    strs = tuple(r[1] for r in rows) if has_str else None
    values = np.array([[float(v) for v in r[first:]] for r in rows], dtype=np.float64)
    return LatencyTable(ids, strs, {dev: values[:, j] for j, dev in enumerate(header[first:])})


def _split(*parts: str) -> DeviceSplit:
    raw: dict[str, Any] = json.loads(_read_bytes(*parts))
    return DeviceSplit(
        train=tuple(raw["train"]),
        valid=tuple(raw["valid"]),
        test=tuple(raw["test"]),
        reference_arch_idx=tuple(int(i) for i in raw["hardware_embedding_arch_idx"]),
    )


@cache
def nb201_latency() -> LatencyTable:
    """Latency of every NAS-Bench-201 cell (rows in official index order)."""
    return _latency_table("nb201", "latency_ms.csv.gz", has_str=True)


@cache
def nb201_accuracy() -> dict[str, float]:
    """Official arch string -> CIFAR-10 test accuracy (%) after 200 epochs."""
    _, rows = _read_csv("nb201", "cifar10_accuracy.csv.gz")
    return {r[1]: float(r[2]) for r in rows}


@cache
def nb201_split() -> DeviceSplit:
    return _split("nb201", "help_split.json")


@cache
def ofa_mbv3_latency() -> LatencyTable:
    """Latency of the 5,000 configs of :func:`ofa_mbv3_archs` (same order)."""
    return _latency_table("ofa_mbv3", "latency_ms.csv.gz", has_str=False)


@cache
def ofa_mbv3_archs() -> tuple[dict[str, Any], ...]:
    """The 5,000 OFA-MobileNetV3 configs ``{ks, e, d, r}`` measured in the latency table."""
    return tuple(json.loads(_read_bytes("ofa_mbv3", "archs.json.gz")))


@cache
def ofa_mbv3_split() -> DeviceSplit:
    return _split("ofa_mbv3", "help_split.json")
