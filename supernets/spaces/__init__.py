"""Search spaces: architecture configs, sampling, validation and encoding."""

from supernets.spaces.base import (
    Arch,
    RestrictedSpace,
    SearchSpace,
    available_spaces,
    get_space,
    register_space,
    space_from_config,
)
from supernets.spaces.nb201 import NB201_EDGES, NB201_OPS, NB201Arch, NB201Space
from supernets.spaces.ofa_mbv3 import OFAArch, OFAMobileNetV3Space, make_divisible

__all__ = [
    "NB201_EDGES",
    "NB201_OPS",
    "Arch",
    "NB201Arch",
    "NB201Space",
    "OFAArch",
    "OFAMobileNetV3Space",
    "RestrictedSpace",
    "SearchSpace",
    "available_spaces",
    "get_space",
    "make_divisible",
    "register_space",
    "space_from_config",
]
