"""The OFA-MobileNetV3 supernet and the static subnets extracted from it.

``build_supernet(space, n_classes)`` makes the weight-sharing network whose
shape is fully determined by the space object; ``net.set_active(arch)`` picks
the subnet that ``net(x)`` computes; ``extract_subnet(net, arch)`` copies that
subnet's weight slices into a plain :class:`MobileNetV3Subnet` which needs
nothing of the supernet (it rebuilds from its JSON config + state_dict).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, cast

import torch
from torch import nn

from supernets.elastic import ElasticMBConv
from supernets.layers import ConvBNAct, MBConv, MBConvSpec, make_activation
from supernets.spaces import OFAArch, OFAMobileNetV3Space, SearchSpace

__all__ = [
    "SUBNET_FORMAT",
    "MobileNetV3Subnet",
    "OFAMobileNetV3",
    "build_subnet",
    "build_supernet",
    "extract_subnet",
]

#: Version tag of the static subnet config (``MobileNetV3Subnet.config``).
SUBNET_FORMAT = "hwnas-mbv3-subnet/1"


class _Head(nn.Module):
    """Final 1x1 expand -> global average pool -> 1x1 feature mix (no BN) -> linear."""

    def __init__(
        self, in_channels: int, expand: int, mix: int, n_classes: int, dropout: float
    ) -> None:
        super().__init__()
        self.final_expand = ConvBNAct(in_channels, expand, 1, act="h_swish")
        self.feature_mix = nn.Conv2d(expand, mix, 1, bias=False)
        self.mix_act = make_activation("h_swish")
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(mix, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.final_expand(x).mean((2, 3), keepdim=True)
        x = self.mix_act(self.feature_mix(x)).flatten(1)
        return self.classifier(self.dropout(x))


class OFAMobileNetV3(nn.Module):
    """Weight-sharing OFA-MobileNetV3 supernet over an :class:`OFAMobileNetV3Space`.

    Stem, first block and head are static; every block of the 5 stages is an
    :class:`ElasticMBConv`. A fresh supernet is active on the largest subnet.
    """

    def __init__(self, space: OFAMobileNetV3Space, n_classes: int) -> None:
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, got {n_classes}")
        self.space = space
        self.n_classes = n_classes
        stem = space.width(space.stem_width)
        first = space.width(space.first_block_width)
        self.stem = ConvBNAct(3, stem, 3, stride=2, act="h_swish")
        self.first_block = MBConv(self.first_block_spec())
        stages: list[nn.ModuleList] = []
        in_ch = first
        for s, width in enumerate(space.stage_widths):
            out_ch = space.width(width)
            blocks = [
                ElasticMBConv(
                    in_ch if i == 0 else out_ch,
                    out_ch,
                    space.kernel_sizes,
                    space.expand_ratios,
                    space.stage_strides[s] if i == 0 else 1,
                    space.stage_acts[s],
                    bool(space.stage_se[s]),
                )
                for i in range(space.max_depth)
            ]
            stages.append(nn.ModuleList(blocks))
            in_ch = out_ch
        self.stages = nn.ModuleList(stages)
        self.head = _Head(
            in_ch,
            space.width(space.final_expand_width),
            space.width(space.feature_mix_width),
            n_classes,
            space.dropout,
        )
        self.depths: tuple[int, ...] = (space.max_depth,) * space.n_stages
        self.active_arch: OFAArch = space.max_arch()
        _init_weights(self)

    def first_block_spec(self) -> MBConvSpec:
        stem = self.space.width(self.space.stem_width)
        first = self.space.width(self.space.first_block_width)
        return MBConvSpec(stem, first, 3, 1, stem, "relu", se=False, expand=False)

    def stage_blocks(self, stage: int) -> list[ElasticMBConv]:
        """All ``max_depth`` blocks of a stage, active or not."""
        return cast(list[ElasticMBConv], list(cast(nn.ModuleList, self.stages[stage])))

    def elastic_blocks(self) -> Iterator[ElasticMBConv]:
        for s in range(len(self.stages)):
            yield from self.stage_blocks(s)

    def active_blocks(self) -> list[ElasticMBConv]:
        """The blocks the active subnet runs, in order (the first ``d`` of each stage)."""
        return [b for s, d in enumerate(self.depths) for b in self.stage_blocks(s)[:d]]

    def set_active(self, arch: OFAArch | Mapping[str, Any] | str) -> OFAArch:
        """Make ``self(x)`` compute subnet ``arch``; returns the validated arch.

        The resolution ``arch.r`` is the caller's business (resize the input);
        the supernet itself accepts any input size.
        """
        arch = self.space.validate(arch)
        for s in range(len(self.stages)):
            for block, slot in zip(self.stage_blocks(s), self.space.stage_slots(s), strict=True):
                block.set_active(arch.ks[slot], arch.e[slot])
        self.depths = tuple(arch.d)
        self.active_arch = arch
        return arch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first_block(self.stem(x))
        for block in self.active_blocks():
            x = block(x)
        return self.head(x)

    @torch.no_grad()
    def sort_channels(self, keep_expand_ratios: Sequence[int] = ()) -> None:
        """Re-sort every block's middle channels by importance (before an expand phase)."""
        for block in self.elastic_blocks():
            block.sort_channels(keep_expand_ratios)


def _init_weights(net: nn.Module) -> None:
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            bound = 1.0 / m.in_features**0.5
            nn.init.uniform_(m.weight, -bound, bound)
            nn.init.zeros_(m.bias)


def build_supernet(space: SearchSpace[Any], n_classes: int) -> OFAMobileNetV3:
    """The supernet of ``space`` (an OFA-MobileNetV3 space) with ``n_classes`` outputs."""
    if not isinstance(space, OFAMobileNetV3Space):
        raise ValueError(
            f"build_supernet needs an OFA-MobileNetV3 space, got {space.name!r} "
            f"({type(space).__name__})"
        )
    return OFAMobileNetV3(space, n_classes)


class MobileNetV3Subnet(nn.Module):
    """A static MobileNetV3, described completely by a JSON-able config.

    ``config`` keys: ``format``, ``n_classes``, ``resolution`` (the input size
    the subnet was specialised for), ``dropout``, ``stem`` (width),
    ``blocks`` (list of :class:`MBConvSpec` dicts, the first block included),
    ``final_expand``, ``feature_mix``, and provenance (``space``, ``arch``).
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        if config.get("format") != SUBNET_FORMAT:
            raise ValueError(
                f"subnet config format must be {SUBNET_FORMAT!r}, got {config.get('format')!r}"
            )
        self.config: dict[str, Any] = copy.deepcopy(dict(config))
        specs = [MBConvSpec.from_dict(b) for b in config["blocks"]]
        self.resolution = int(config["resolution"])
        self.stem = ConvBNAct(3, int(config["stem"]), 3, stride=2, act="h_swish")
        self.blocks = nn.Sequential(*(MBConv(s) for s in specs))
        self.head = _Head(
            specs[-1].out_channels,
            int(config["final_expand"]),
            int(config["feature_mix"]),
            int(config["n_classes"]),
            float(config["dropout"]),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


def build_subnet(
    space: SearchSpace[Any], arch: OFAArch | Mapping[str, Any] | str, n_classes: int
) -> MobileNetV3Subnet:
    """A freshly initialised static subnet ``arch`` of ``space`` (to train from
    scratch); same shape and config as ``extract_subnet`` would give."""
    with torch.no_grad():
        subnet = extract_subnet(build_supernet(space, n_classes), arch)
    _init_weights(subnet)  # fan-out init for the subnet's own kernel sizes
    return subnet


@torch.no_grad()
def extract_subnet(
    supernet: OFAMobileNetV3, arch: OFAArch | Mapping[str, Any] | str
) -> MobileNetV3Subnet:
    """Copy subnet ``arch``'s weights (depthwise kernels after their transforms,
    BN running stats included) into a static network on the supernet's device.

    In eval mode its outputs equal ``supernet.set_active(arch); supernet(x)``.
    The supernet's own active subnet is left unchanged.
    """
    space = supernet.space
    previous = supernet.active_arch
    arch = supernet.set_active(arch)
    try:
        specs = [supernet.first_block_spec()]
        state: dict[str, torch.Tensor] = {}
        state.update(_prefixed("stem.", supernet.stem.state_dict()))
        state.update(_prefixed("blocks.0.", supernet.first_block.state_dict()))
        for block in supernet.active_blocks():
            state.update(_prefixed(f"blocks.{len(specs)}.", block.static_state()))
            specs.append(block.static_spec())
        state.update(_prefixed("head.", supernet.head.state_dict()))
    finally:
        supernet.set_active(previous)
    config = {
        "format": SUBNET_FORMAT,
        "n_classes": supernet.n_classes,
        "resolution": arch.r,
        "dropout": space.dropout,
        "stem": space.width(space.stem_width),
        "blocks": [s.to_dict() for s in specs],
        "final_expand": space.width(space.final_expand_width),
        "feature_mix": space.width(space.feature_mix_width),
        "space": {"name": space.name, "config": space.config()},
        "arch": arch.to_dict(),
    }
    device = next(supernet.parameters()).device
    subnet = MobileNetV3Subnet(config).to(device)
    subnet.load_state_dict({k: v.clone() for k, v in state.items()}, strict=True)
    subnet.train(supernet.training)
    return subnet


def _prefixed(prefix: str, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {prefix + k: v for k, v in state.items()}
