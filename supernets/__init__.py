"""Search spaces, elastic layers, the OFA-MobileNetV3 supernet and its training.

Never talks to a database or HTTP: usable as a plain library.
"""

from supernets.spaces import (
    Arch,
    NB201Arch,
    NB201Space,
    OFAArch,
    OFAMobileNetV3Space,
    SearchSpace,
    available_spaces,
    get_space,
    register_space,
    space_from_config,
)

__all__ = [
    "Arch",
    "NB201Arch",
    "NB201Space",
    "OFAArch",
    "OFAMobileNetV3Space",
    "SearchSpace",
    "available_spaces",
    "get_space",
    "register_space",
    "space_from_config",
]
