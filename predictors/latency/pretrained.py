"""Meta-trained latency predictors shipped with hwnas, and the data they come from.

``predictors/latency/pretrained/<space>.json`` are :class:`MetaLatencyPredictor`
files rebuilt by ``python -m predictors.latency.build_pretrained`` from the
bundled HELP tables (``supernets.tables``), meta-trained on HELP's meta-train
devices over every architecture of the table:

* ``nb201``: 15,625 cells x 9 devices (GPUs at batch 1/32/256, Xeon CPUs, phones).
* ``ofa-mbv3``: 5,000 OFA-MobileNetV3 subnets x 9 GPU settings (batch 1/32/64).
* ``ofa-mbv3-tiny``: the same 5,000 subnets mapped into the tiny preset (same
  blocks; the 25 resolutions 128..224 binned onto 32..64 by relative position),
  so that a CPU-sized space starts from the GPU devices' knowledge of which
  blocks cost what. The prior is looser here -- the adaptation does more work.

Each file's ``metadata`` records the space (name and config), the reference
architectures' configs (what a new device measures) and the source devices.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from predictors.latency.meta import MetaLatencyPredictor
from supernets.spaces import NB201Space, OFAMobileNetV3Space, SearchSpace, get_space

__all__ = [
    "load_pretrained",
    "meta_training_data",
    "pretrained_spaces",
    "to_space_arch",
]

PRETRAINED_SPACES: tuple[str, ...] = ("nb201", "ofa-mbv3", "ofa-mbv3-tiny")


def pretrained_spaces() -> list[str]:
    """Search spaces with a shipped meta-trained latency predictor."""
    return list(PRETRAINED_SPACES)


@cache
def _pretrained_bytes(space_name: str) -> bytes:
    path = resources.files("predictors.latency").joinpath("pretrained", f"{space_name}.json")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ValueError(
            f"the shipped predictor for {space_name!r} is missing: rebuild with "
            "`python -m predictors.latency.build_pretrained`"
        ) from None


def load_pretrained(space: str | SearchSpace[Any]) -> MetaLatencyPredictor:
    """The shipped meta-trained predictor for ``space`` (a name or a space object)."""
    name = space if isinstance(space, str) else space.name
    if name not in PRETRAINED_SPACES:
        raise ValueError(
            f"no shipped latency predictor for search space {name!r}; "
            f"shipped: {list(PRETRAINED_SPACES)}"
        )
    return MetaLatencyPredictor.from_bytes(_pretrained_bytes(name))


def to_space_arch(
    space: OFAMobileNetV3Space, config: dict[str, Any], source_resolutions: tuple[int, ...]
) -> Any:
    """An OFA config from another OFA-MobileNetV3 space (e.g. the full-size one)
    in ``space``: blocks unchanged, the resolution mapped by its relative
    position in ``source_resolutions`` to the nearest of ``space.resolutions``."""
    lo, hi = min(source_resolutions), max(source_resolutions)
    rel = (int(config["r"]) - lo) / (hi - lo) if hi > lo else 0.0
    r = space.resolutions[round(rel * (len(space.resolutions) - 1))]
    return space.validate({**dict(config), "r": r})


def meta_training_data(
    space_name: str, devices: str = "train"
) -> tuple[SearchSpace[Any], list[Any], np.ndarray, dict[str, np.ndarray]]:
    """``(space, archs, X, Y)`` from the bundled HELP tables for ``space_name``.

    ``devices`` is a HELP split name (``train``, ``valid``, ``test``) or ``all``.
    ``X`` rows follow the table's architecture order.
    """
    from supernets import tables

    space: SearchSpace[Any]
    archs: list[Any]
    if space_name == "nb201":
        table, split = tables.nb201_latency(), tables.nb201_split()
        nb201 = get_space("nb201")
        assert isinstance(nb201, NB201Space)
        space, archs = nb201, nb201.all_archs()
        X = nb201.encode_many(archs)
    elif space_name in ("ofa-mbv3", "ofa-mbv3-tiny"):
        table, split = tables.ofa_mbv3_latency(), tables.ofa_mbv3_split()
        ofa, full = get_space(space_name), get_space("ofa-mbv3")
        assert isinstance(ofa, OFAMobileNetV3Space) and isinstance(full, OFAMobileNetV3Space)
        space = ofa
        archs = [to_space_arch(ofa, cfg, full.resolutions) for cfg in tables.ofa_mbv3_archs()]
        X = ofa.encode_many(archs)
    else:
        raise ValueError(
            f"no bundled latency table for search space {space_name!r}; "
            f"known: {list(PRETRAINED_SPACES)}"
        )
    if devices == "all":
        names = list(table.latency)
    elif devices in ("train", "valid", "test"):
        names = list(getattr(split, devices))
    else:
        raise ValueError(f"devices must be 'train', 'valid', 'test' or 'all', got {devices!r}")
    return space, archs, X.astype(np.float64), {d: table.latency[d] for d in names}
