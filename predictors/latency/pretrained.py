"""Meta-trained latency predictors shipped with hwnas, and the data they come from.

``predictors/latency/pretrained/<space>.json`` are :class:`MetaLatencyPredictor`
files rebuilt by ``python -m predictors.latency.build_pretrained`` from the
bundled HELP tables (``supernets.tables``), meta-trained on HELP's meta-train
devices over every architecture of the table:

* ``nb201``: 15,625 cells x 9 devices (GPUs at batch 1/32/256, Xeon CPUs, phones).
* ``ofa-mbv3``: 5,000 OFA-MobileNetV3 subnets x 9 GPU settings (batch 1/32/64).
* ``ofa-mbv3-tiny``: the same 5,000 subnets mapped into the tiny preset (same
  blocks; the table's resolutions binned onto the preset's by relative
  position), so that a CPU-sized space starts from the GPU devices' knowledge
  of which blocks cost what. The prior is looser here -- adaptation does more.
* ``ofa-mbv3-w1.2``: the same subnets in the width-1.2 space (imported OFA
  w1.2 supernets). The tables time width-1.0 networks, so this prior knows
  which blocks cost more than others, not how much wider networks cost: a
  device's own w1.2 measurements set that when it registers.

Each file's ``metadata`` records the space (name and config), the reference
architectures' configs (what a new device measures) and the source devices.
An OFA-MobileNetV3 space whose configuration differs from the shipped one (other
resolutions, say) gets a predictor meta-trained on the fly from the same table,
the same way (about half a minute, once per process).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from predictors.latency.features import shared_cost_groups
from predictors.latency.meta import MetaLatencyPredictor
from supernets.spaces import NB201Space, OFAMobileNetV3Space, SearchSpace, get_space

__all__ = [
    "PRETRAINED_SPACES",
    "load_pretrained",
    "meta_train",
    "meta_training_data",
    "pretrained_bytes",
    "pretrained_spaces",
    "to_space_arch",
]

PRETRAINED_SPACES: tuple[str, ...] = ("nb201", "ofa-mbv3", "ofa-mbv3-tiny", "ofa-mbv3-w1.2")


def pretrained_spaces() -> list[str]:
    """Search spaces with a shipped meta-trained latency predictor."""
    return list(PRETRAINED_SPACES)


@cache
def pretrained_bytes(space_name: str) -> bytes:
    """The shipped meta-trained predictor file of ``space_name``, as stored."""
    path = resources.files("predictors.latency").joinpath("pretrained", f"{space_name}.json")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ValueError(
            f"the shipped predictor for {space_name!r} is missing: rebuild with "
            "`python -m predictors.latency.build_pretrained`"
        ) from None


def _config_key(space: SearchSpace[Any]) -> str:
    return json.dumps(space.config(), sort_keys=True)


@cache
def _meta_trained_bytes(space: OFAMobileNetV3Space) -> bytes:
    return meta_train(space).to_bytes()  # spaces are frozen dataclasses: hashable


def load_pretrained(space: str | SearchSpace[Any]) -> MetaLatencyPredictor:
    """The meta-trained predictor for ``space`` (a name or a space object).

    The shipped file when it was built for this exact space configuration;
    for an OFA-MobileNetV3 space configured otherwise, one meta-trained now
    from the bundled table (cached per process).
    """
    space_obj = get_space(space) if isinstance(space, str) else space
    name = space_obj.name
    if name in PRETRAINED_SPACES:
        meta = MetaLatencyPredictor.from_bytes(pretrained_bytes(name))
        if meta.metadata.get("space_config") == json.loads(_config_key(space_obj)):
            return meta
    if isinstance(space_obj, OFAMobileNetV3Space):
        return MetaLatencyPredictor.from_bytes(_meta_trained_bytes(space_obj))
    if name in PRETRAINED_SPACES:
        raise ValueError(
            f"the shipped latency predictor for {name!r} was built for another configuration "
            "of the space: rebuild with `python -m predictors.latency.build_pretrained`"
        )
    raise ValueError(
        f"no shipped latency predictor for search space {name!r}; "
        f"shipped: {list(PRETRAINED_SPACES)} (and any OFA-MobileNetV3 space)"
    )


def meta_train(
    space: str | SearchSpace[Any],
    *,
    seed: int = 0,
    reference_indices: Sequence[int] | None = None,
) -> MetaLatencyPredictor:
    """Meta-train ``space``'s predictor on HELP's meta-train devices (what the
    shipped files are); ``metadata`` gets the space and the reference configs.

    ``reference_indices`` pins the reference rows (``build_pretrained`` keeps
    the shipped ones, so that a rebuild does not change what registered devices
    measured); otherwise they are designed under the new prior."""
    space_obj, archs, X, Y = meta_training_data(space, devices="train")
    meta = MetaLatencyPredictor(seed=seed).fit(
        X, Y, groups=shared_cost_groups(space_obj), reference_indices=reference_indices
    )
    meta.metadata.update(
        {
            "space": space_obj.name,
            "space_config": json.loads(_config_key(space_obj)),
            "reference_archs": [
                space_obj.canonical(archs[i]).to_dict() for i in meta.reference_indices
            ],
            "meta_train": {
                "data": "HELP (HayeonLee/HELP, MIT) via supernets.tables",
                "devices": sorted(Y),
                "n_archs": int(X.shape[0]),
            },
        }
    )
    return meta


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
    space: str | SearchSpace[Any], devices: str = "train"
) -> tuple[SearchSpace[Any], list[Any], np.ndarray, dict[str, np.ndarray]]:
    """``(space, archs, X, Y)`` from the bundled HELP tables for ``space``.

    ``devices`` is a HELP split name (``train``, ``valid``, ``test``) or ``all``.
    ``X`` rows follow the table's architecture order. An OFA-MobileNetV3 space
    other than the table's own gets the table's subnets mapped into it
    (:func:`to_space_arch`; its kernel/expand/depth choices must cover the table's).
    """
    from supernets import tables

    space_obj = get_space(space) if isinstance(space, str) else space
    if isinstance(space_obj, NB201Space):
        table, split = tables.nb201_latency(), tables.nb201_split()
        archs: list[Any] = space_obj.all_archs()
        X = space_obj.encode_many(archs)
    elif isinstance(space_obj, OFAMobileNetV3Space):
        table, split = tables.ofa_mbv3_latency(), tables.ofa_mbv3_split()
        full = get_space("ofa-mbv3")
        assert isinstance(full, OFAMobileNetV3Space)
        archs = [to_space_arch(space_obj, c, full.resolutions) for c in tables.ofa_mbv3_archs()]
        X = space_obj.encode_many(archs)
    else:
        raise ValueError(
            f"no bundled latency table for search space {space_obj.name!r} "
            f"({type(space_obj).__name__}); known: NAS-Bench-201 and OFA-MobileNetV3 spaces"
        )
    if devices == "all":
        names = list(table.latency)
    elif devices in ("train", "valid", "test"):
        names = list(getattr(split, devices))
    else:
        raise ValueError(f"devices must be 'train', 'valid', 'test' or 'all', got {devices!r}")
    return space_obj, archs, X.astype(np.float64), {d: table.latency[d] for d in names}
