"""The Once-for-All MobileNetV3 search space.

Network (as in OFA): 3x3 stride-2 stem conv -> one fixed MBConv (expand 1,
kernel 3) -> 5 elastic stages of up to 4 MBConv blocks -> 1x1 final expand ->
global pool -> 1x1 feature mix (no BN) -> linear classifier.

An architecture is ``{ks[20], e[20], d[5], r}``: kernel size and expand ratio
per block *slot* (stage-major, ``max_depth`` slots per stage), depth per stage
and input resolution. Slots beyond a stage's depth do not exist in the network;
their ks/e values are carried but ignored (:meth:`OFAMobileNetV3Space.canonical`
resets them so that equal networks compare and hash equal).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from supernets.spaces.base import SearchSpace, register_space

__all__ = ["OFAArch", "OFAMobileNetV3Space", "make_divisible"]


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of ``divisor`` (MobileNet convention:
    never go more than 10% below the requested value)."""
    min_value = divisor if min_value is None else min_value
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


@dataclass(frozen=True)
class OFAArch:
    """One OFA-MobileNetV3 subnet config. Immutable and hashable."""

    ks: tuple[int, ...]
    e: tuple[int, ...]
    d: tuple[int, ...]
    r: int

    def to_dict(self) -> dict[str, Any]:
        return {"ks": list(self.ks), "e": list(self.e), "d": list(self.d), "r": int(self.r)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OFAArch:
        """Parse without validating against a space (see ``space.validate``)."""
        missing = [k for k in ("ks", "e", "d", "r") if k not in data]
        if missing:
            raise ValueError(f"arch config is missing field(s) {missing}; expected ks, e, d, r")
        extra = sorted(set(data) - {"ks", "e", "d", "r"})
        if extra:
            raise ValueError(f"arch config has unknown field(s) {extra}; expected ks, e, d, r")
        try:
            return cls(
                ks=tuple(int(v) for v in data["ks"]),
                e=tuple(int(v) for v in data["e"]),
                d=tuple(int(v) for v in data["d"]),
                r=int(data["r"]),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"arch config fields must be integers / lists of integers: {exc}"
            ) from None

    def __str__(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))


@dataclass(frozen=True)
class OFAMobileNetV3Space(SearchSpace[OFAArch]):
    """OFA-MobileNetV3 space; every network hyper-parameter is a constructor argument.

    The supernet builder reads widths, strides, activations and SE placement
    from here, so a space object fully determines the supernet's shape.
    """

    name: str = "ofa-mbv3"
    kernel_sizes: tuple[int, ...] = (3, 5, 7)
    expand_ratios: tuple[int, ...] = (3, 4, 6)
    depths: tuple[int, ...] = (2, 3, 4)
    resolutions: tuple[int, ...] = tuple(range(128, 225, 4))
    width_mult: float = 1.0
    stem_width: int = 16
    first_block_width: int = 16
    stage_widths: tuple[int, ...] = (24, 40, 80, 112, 160)
    stage_strides: tuple[int, ...] = (2, 2, 2, 1, 2)
    stage_acts: tuple[str, ...] = ("relu", "relu", "h_swish", "h_swish", "h_swish")
    stage_se: tuple[bool, ...] = (False, True, False, True, True)
    final_expand_width: int = 960
    feature_mix_width: int = 1280
    dropout: float = 0.1
    _slot_index: tuple[tuple[int, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for attr in ("kernel_sizes", "expand_ratios", "depths", "resolutions"):
            values = tuple(int(v) for v in getattr(self, attr))
            if not values or sorted(set(values)) != list(values):
                raise ValueError(
                    f"{attr} must be a non-empty, strictly increasing list, got {values}"
                )
            object.__setattr__(self, attr, values)
        if any(k % 2 == 0 for k in self.kernel_sizes):
            raise ValueError(f"kernel_sizes must be odd, got {self.kernel_sizes}")
        if self.depths[0] < 1:
            raise ValueError(f"depths must be >= 1, got {self.depths}")
        n = len(self.stage_widths)
        for attr in ("stage_strides", "stage_acts", "stage_se"):
            seq = tuple(getattr(self, attr))
            if len(seq) != n:
                raise ValueError(f"{attr} must have one entry per stage ({n}), got {len(seq)}")
            object.__setattr__(self, attr, seq)
        object.__setattr__(self, "stage_widths", tuple(int(w) for w in self.stage_widths))
        for act in self.stage_acts:
            if act not in ("relu", "h_swish"):
                raise ValueError(f"stage_acts entries must be 'relu' or 'h_swish', got {act!r}")
        if self.width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {self.width_mult}")
        slots = tuple(tuple(range(s * self.max_depth, (s + 1) * self.max_depth)) for s in range(n))
        object.__setattr__(self, "_slot_index", slots)

    # -- shape -------------------------------------------------------------
    @property
    def n_stages(self) -> int:
        return len(self.stage_widths)

    @property
    def max_depth(self) -> int:
        return self.depths[-1]

    @property
    def n_slots(self) -> int:
        return self.n_stages * self.max_depth

    def width(self, channels: int) -> int:
        """Channel count after the width multiplier."""
        return make_divisible(channels * self.width_mult, 8)

    def stage_slots(self, stage: int) -> tuple[int, ...]:
        return self._slot_index[stage]

    def active_slots(self, arch: OFAArch) -> list[int]:
        """Slot indices of the blocks that exist in ``arch`` (stage-major)."""
        return [slot for s, d in enumerate(arch.d) for slot in self._slot_index[s][:d]]

    # -- archs -------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> OFAArch:
        # One scalar draw per choice, as ``rng.choice`` makes (the same stream,
        # so seeded samples are unchanged), without its per-call array set-up:
        # registration rounds sample tens of thousands of architectures.
        def pick(options: Sequence[int]) -> int:
            return int(options[int(rng.integers(0, len(options)))])

        return OFAArch(
            ks=tuple(pick(self.kernel_sizes) for _ in range(self.n_slots)),
            e=tuple(pick(self.expand_ratios) for _ in range(self.n_slots)),
            d=tuple(pick(self.depths) for _ in range(self.n_stages)),
            r=pick(self.resolutions),
        )

    def max_arch(self) -> OFAArch:
        return self._uniform(
            self.kernel_sizes[-1], self.expand_ratios[-1], self.depths[-1], self.resolutions[-1]
        )

    def min_arch(self) -> OFAArch:
        return self._uniform(
            self.kernel_sizes[0], self.expand_ratios[0], self.depths[0], self.resolutions[0]
        )

    def _uniform(self, k: int, e: int, d: int, r: int) -> OFAArch:
        return OFAArch((k,) * self.n_slots, (e,) * self.n_slots, (d,) * self.n_stages, r)

    def validate(self, arch: OFAArch | Mapping[str, Any] | str) -> OFAArch:
        if isinstance(arch, str):
            try:
                arch = json.loads(arch)
            except json.JSONDecodeError as exc:
                raise ValueError(f"arch string is not JSON: {exc}") from None
        if isinstance(arch, Mapping):
            arch = OFAArch.from_dict(arch)
        if not isinstance(arch, OFAArch):
            raise ValueError(f"expected an OFA arch config, got {type(arch).__name__}")
        self._check_list("ks", arch.ks, self.n_slots, self.kernel_sizes)
        self._check_list("e", arch.e, self.n_slots, self.expand_ratios)
        self._check_list("d", arch.d, self.n_stages, self.depths)
        if arch.r not in self.resolutions:
            raise ValueError(
                f"field 'r' (resolution) must be one of {list(self.resolutions)}, got {arch.r}"
            )
        return arch

    @staticmethod
    def _check_list(name: str, values: Sequence[int], length: int, allowed: Sequence[int]) -> None:
        if len(values) != length:
            raise ValueError(f"field {name!r} must have {length} entries, got {len(values)}")
        for i, v in enumerate(values):
            if v not in allowed:
                raise ValueError(f"field {name!r}[{i}] must be one of {list(allowed)}, got {v}")

    def canonical(self, arch: OFAArch) -> OFAArch:
        """Skipped slots get the smallest kernel and expand ratio."""
        active = set(self.active_slots(arch))
        ks = tuple(k if i in active else self.kernel_sizes[0] for i, k in enumerate(arch.ks))
        e = tuple(x if i in active else self.expand_ratios[0] for i, x in enumerate(arch.e))
        return OFAArch(ks, e, arch.d, arch.r)

    # -- encoding ----------------------------------------------------------
    @property
    def feature_dim(self) -> int:
        return len(self.resolutions) + self.n_slots * (
            len(self.kernel_sizes) + len(self.expand_ratios)
        )

    def encode(self, arch: OFAArch) -> np.ndarray:
        """One-hot resolution, then per slot one-hot kernel and one-hot expand
        (all zero for a skipped slot, which is how depth is encoded)."""
        arch = self.validate(arch)
        nk, ne = len(self.kernel_sizes), len(self.expand_ratios)
        vec = np.zeros(self.feature_dim, dtype=np.float32)
        vec[self.resolutions.index(arch.r)] = 1.0
        base = len(self.resolutions)
        for slot in self.active_slots(arch):
            vec[base + slot * nk + self.kernel_sizes.index(arch.ks[slot])] = 1.0
            off = base + self.n_slots * nk
            vec[off + slot * ne + self.expand_ratios.index(arch.e[slot])] = 1.0
        return vec

    def decode(self, vector: np.ndarray) -> OFAArch:
        vec = np.asarray(vector, dtype=np.float64).reshape(-1)
        if vec.shape[0] != self.feature_dim:
            raise ValueError(
                f"encoded vector must have {self.feature_dim} entries, got {vec.shape[0]}"
            )
        nk, ne, nr = len(self.kernel_sizes), len(self.expand_ratios), len(self.resolutions)
        r_part = vec[:nr]
        if not np.isclose(r_part.sum(), 1.0):
            raise ValueError("encoded vector has no single resolution set")
        k_part = vec[nr : nr + self.n_slots * nk].reshape(self.n_slots, nk)
        e_part = vec[nr + self.n_slots * nk :].reshape(self.n_slots, ne)
        present = k_part.sum(axis=1) > 0.5
        depths = []
        for s in range(self.n_stages):
            flags = present[list(self._slot_index[s])]
            d = int(flags.sum())
            if not flags[:d].all():
                raise ValueError(f"encoded vector has a gap in the blocks of stage {s}")
            depths.append(d)
        ks = tuple(
            self.kernel_sizes[int(np.argmax(k_part[i]))] if present[i] else self.kernel_sizes[0]
            for i in range(self.n_slots)
        )
        e = tuple(
            self.expand_ratios[int(np.argmax(e_part[i]))] if present[i] else self.expand_ratios[0]
            for i in range(self.n_slots)
        )
        return self.validate(
            OFAArch(ks, e, tuple(depths), self.resolutions[int(np.argmax(r_part))])
        )

    # -- flat parameter view -------------------------------------------------
    def choices(self) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        for s in range(self.n_stages):
            out[f"d{s}"] = list(self.depths)
            for slot in self._slot_index[s]:
                out[f"ks{slot}"] = list(self.kernel_sizes)
                out[f"e{slot}"] = list(self.expand_ratios)
        out["r"] = list(self.resolutions)
        return out

    def to_params(self, arch: OFAArch) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for s in range(self.n_stages):
            params[f"d{s}"] = arch.d[s]
            for slot in self._slot_index[s]:
                params[f"ks{slot}"] = arch.ks[slot]
                params[f"e{slot}"] = arch.e[slot]
        params["r"] = arch.r
        return params

    def from_params(self, params: Mapping[str, Any]) -> OFAArch:
        try:
            arch = OFAArch(
                ks=tuple(int(params[f"ks{i}"]) for i in range(self.n_slots)),
                e=tuple(int(params[f"e{i}"]) for i in range(self.n_slots)),
                d=tuple(int(params[f"d{s}"]) for s in range(self.n_stages)),
                r=int(params["r"]),
            )
        except KeyError as exc:
            raise ValueError(f"missing parameter {exc.args[0]!r}") from None
        return self.validate(arch)

    def config(self) -> dict[str, Any]:
        return {
            "kernel_sizes": list(self.kernel_sizes),
            "expand_ratios": list(self.expand_ratios),
            "depths": list(self.depths),
            "resolutions": list(self.resolutions),
            "width_mult": self.width_mult,
            "stem_width": self.stem_width,
            "first_block_width": self.first_block_width,
            "stage_widths": list(self.stage_widths),
            "stage_strides": list(self.stage_strides),
            "stage_acts": list(self.stage_acts),
            "stage_se": list(self.stage_se),
            "final_expand_width": self.final_expand_width,
            "feature_mix_width": self.feature_mix_width,
            "dropout": self.dropout,
        }


def _with_tuples(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}


@register_space("ofa-mbv3")
def ofa_mbv3(**overrides: Any) -> OFAMobileNetV3Space:
    """ImageNet-sized OFA-MobileNetV3 (w1.0, 128-224 px)."""
    return OFAMobileNetV3Space(name="ofa-mbv3", **_with_tuples(overrides))


#: The CPU-sized preset: small images and narrow layers so that training and
#: latency measurement take seconds on a 2-core machine. Same topology.
#: Resolutions stop at 48 px: 64 px cost 1.5x the compute per epoch, and on
#: small images a 2x spread of scales made the elastic-resolution full network
#: learn much slower than a single-resolution one (benchmarks/supernet_quality).
TINY_DEFAULTS: dict[str, Any] = {
    "resolutions": (32, 36, 40, 44, 48),
    "stem_width": 8,
    "first_block_width": 8,
    "stage_widths": (16, 24, 32, 48, 64),
    "final_expand_width": 192,
    "feature_mix_width": 256,
}


@register_space("ofa-mbv3-tiny")
def ofa_mbv3_tiny(**overrides: Any) -> OFAMobileNetV3Space:
    """Narrow OFA-MobileNetV3 for small images (32-48 px)."""
    kwargs = {**TINY_DEFAULTS, **_with_tuples(overrides)}
    return OFAMobileNetV3Space(name="ofa-mbv3-tiny", **kwargs)


@register_space("ofa-mbv3-w1.2")
def ofa_mbv3_w12(**overrides: Any) -> OFAMobileNetV3Space:
    """OFA-MobileNetV3 at width 1.2 (OFA's released ``_w1.2`` supernet). A name
    of its own: the shipped latency predictor is for w1.0 networks."""
    kwargs = {"width_mult": 1.2, **_with_tuples(overrides)}
    return OFAMobileNetV3Space(name="ofa-mbv3-w1.2", **kwargs)
