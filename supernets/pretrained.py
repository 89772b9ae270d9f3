"""Trained supernets shipped with hwnas, so that the main job searches real
weights without training first.

``supernets/pretrained/<name>.pt`` are ``hwnas-supernet/1`` checkpoints
(:func:`supernets.train.load_supernet` reads them like any phase file) with
the weights stored as float16 to keep the package small, and a ``build``
record: the exact command that trained them, the training manifest's
per-phase records, and when. Rebuild with
``python -m supernets.build_pretrained`` (see that module).

Shipped:

* ``ofa-mbv3-tiny-digits-hard`` -- ``ofa-mbv3-tiny`` on ``digits-hard``
  (:mod:`supernets.synthetic`), schedule ``deps-max-res``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from supernets.networks import OFAMobileNetV3
    from supernets.spaces import OFAMobileNetV3Space

__all__ = [
    "PRETRAINED_SUPERNETS",
    "load_pretrained_supernet",
    "pretrained_supernet_path",
    "pretrained_supernets",
]

#: Shipped supernets: name -> what it is (one line).
PRETRAINED_SUPERNETS: dict[str, str] = {
    "ofa-mbv3-tiny-digits-hard": "ofa-mbv3-tiny trained on digits-hard (schedule deps-max-res, 10 epochs)",
}


def pretrained_supernets() -> list[str]:
    """Names of the supernets shipped with hwnas."""
    return sorted(PRETRAINED_SUPERNETS)


def pretrained_supernet_path(name: str) -> Path:
    """The shipped checkpoint file of ``name`` (``ValueError`` if unknown or missing)."""
    if name not in PRETRAINED_SUPERNETS:
        raise ValueError(
            f"no shipped supernet {name!r}; shipped: {', '.join(pretrained_supernets())}"
        )
    path = Path(str(resources.files("supernets").joinpath("pretrained", f"{name}.pt")))
    if not path.is_file():
        raise ValueError(
            f"the shipped supernet {name!r} is missing from the package: rebuild it with "
            f"`python -m supernets.build_pretrained --name {name}`"
        )
    return path


def load_pretrained_supernet(
    name: str = "ofa-mbv3-tiny-digits-hard", map_location: str = "cpu"
) -> tuple[OFAMobileNetV3Space, OFAMobileNetV3, dict[str, Any]]:
    """``(space, supernet, metadata)`` of a shipped supernet, as
    :func:`supernets.train.load_supernet` returns them (``metadata["dataset"]``
    reloads the exact split it was trained on; ``metadata["build"]`` says how
    it was made)."""
    from supernets.train import load_supernet

    return load_supernet(pretrained_supernet_path(name), map_location=map_location)
