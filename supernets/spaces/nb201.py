"""The NAS-Bench-201 cell space: 6 edges x 5 operations = 15,625 cells.

``str(arch)`` is the official NAS-Bench-201 string, e.g.
``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|``
with edges in the order 0->1, 0->2, 1->2, 0->3, 1->3, 2->3. The official index
of a cell is ``space.index(arch)``; the bundled tables (``supernets.tables``)
give its CIFAR-10 accuracy and its latency on 27 devices.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from supernets.spaces.base import SearchSpace, register_space

__all__ = ["NB201_EDGES", "NB201_OPS", "NB201Arch", "NB201Space"]

NB201_OPS: tuple[str, ...] = (
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
)
#: (target node, source node) of each edge, in the official string's order.
NB201_EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))


@dataclass(frozen=True)
class NB201Arch:
    """A cell: one operation name per edge."""

    ops: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"ops": list(self.ops)}

    @property
    def computes_anything(self) -> bool:
        """True when some path of non-``none`` edges leads from the cell's input
        (node 0) to its output (node 3). Without one the cell outputs zeros
        whatever the image: chance accuracy, and next to no latency (pixel3's
        table times such cells at 0.003 ms), so they are no answer to "fast
        enough"."""
        reached = {0}
        for (target, source), op in zip(NB201_EDGES, self.ops, strict=True):
            if op != "none" and source in reached:  # edges come in topological order
                reached.add(target)
        return 3 in reached

    def __str__(self) -> str:
        nodes: list[list[str]] = [[], [], []]
        for (target, source), op in zip(NB201_EDGES, self.ops, strict=True):
            nodes[target - 1].append(f"{op}~{source}")
        return "+".join("|" + "|".join(node) + "|" for node in nodes)

    @classmethod
    def from_string(cls, text: str) -> NB201Arch:
        """Parse an official NAS-Bench-201 string (no validation of op names)."""
        parts = text.strip().split("+")
        if len(parts) != 3:
            raise ValueError(f"NAS-Bench-201 string must have 3 nodes separated by '+': {text!r}")
        ops: list[str] = []
        for target, part in enumerate(parts, start=1):
            tokens = [t for t in part.split("|") if t]
            if len(tokens) != target:
                raise ValueError(f"node {target} of {text!r} must have {target} input edge(s)")
            for source, token in enumerate(tokens):
                op, _, src = token.partition("~")
                if src != str(source):
                    raise ValueError(f"edge {token!r} of {text!r} must read from node {source}")
                ops.append(op)
        return cls(tuple(ops))


@dataclass(frozen=True)
class NB201Space(SearchSpace[NB201Arch]):
    """NAS-Bench-201 cell space. Encoding: one-hot op per edge (30 dims)."""

    name: str = "nb201"

    @cached_property
    def _index_of(self) -> dict[str, int]:
        from supernets.tables import nb201_latency

        table = nb201_latency()
        assert table.arch_strs is not None
        return {s: int(i) for i, s in zip(table.arch_ids, table.arch_strs, strict=True)}

    @cached_property
    def _str_of(self) -> dict[int, str]:
        return {i: s for s, i in self._index_of.items()}

    def index(self, arch: NB201Arch) -> int:
        """Official NAS-Bench-201 index of ``arch``."""
        return self._index_of[str(self.validate(arch))]

    def from_index(self, index: int) -> NB201Arch:
        try:
            return NB201Arch.from_string(self._str_of[int(index)])
        except KeyError:
            raise ValueError(f"NAS-Bench-201 index must be in [0, 15624], got {index}") from None

    def all_archs(self) -> list[NB201Arch]:
        """Every cell, in official index order."""
        return [self.from_index(i) for i in range(len(self._str_of))]

    def sample(self, rng: np.random.Generator) -> NB201Arch:
        return NB201Arch(tuple(NB201_OPS[int(i)] for i in rng.integers(len(NB201_OPS), size=6)))

    def validate(self, arch: NB201Arch | Mapping[str, Any] | str) -> NB201Arch:
        if isinstance(arch, str):
            arch = NB201Arch.from_string(arch)
        elif isinstance(arch, Mapping):
            if set(arch) != {"ops"}:
                raise ValueError(
                    f"NB201 arch config must be {{'ops': [6 names]}}, got keys {sorted(arch)}"
                )
            arch = NB201Arch(tuple(str(o) for o in arch["ops"]))
        if not isinstance(arch, NB201Arch):
            raise ValueError(f"expected a NAS-Bench-201 arch, got {type(arch).__name__}")
        if len(arch.ops) != len(NB201_EDGES):
            raise ValueError(
                f"field 'ops' must have {len(NB201_EDGES)} entries, got {len(arch.ops)}"
            )
        for i, op in enumerate(arch.ops):
            if op not in NB201_OPS:
                raise ValueError(f"field 'ops'[{i}] must be one of {list(NB201_OPS)}, got {op!r}")
        return arch

    @property
    def feature_dim(self) -> int:
        return len(NB201_EDGES) * len(NB201_OPS)

    def encode(self, arch: NB201Arch) -> np.ndarray:
        arch = self.validate(arch)
        vec = np.zeros(self.feature_dim, dtype=np.float32)
        for edge, op in enumerate(arch.ops):
            vec[edge * len(NB201_OPS) + NB201_OPS.index(op)] = 1.0
        return vec

    def decode(self, vector: np.ndarray) -> NB201Arch:
        vec = np.asarray(vector, dtype=np.float64).reshape(-1)
        if vec.shape[0] != self.feature_dim:
            raise ValueError(
                f"encoded vector must have {self.feature_dim} entries, got {vec.shape[0]}"
            )
        rows = vec.reshape(len(NB201_EDGES), len(NB201_OPS))
        if not np.allclose(rows.sum(axis=1), 1.0):
            raise ValueError("encoded vector must have exactly one op per edge")
        return NB201Arch(tuple(NB201_OPS[int(np.argmax(r))] for r in rows))

    def choices(self) -> dict[str, list[Any]]:
        return {f"edge{i}": list(NB201_OPS) for i in range(len(NB201_EDGES))}

    def to_params(self, arch: NB201Arch) -> dict[str, Any]:
        return {f"edge{i}": op for i, op in enumerate(arch.ops)}

    def from_params(self, params: Mapping[str, Any]) -> NB201Arch:
        try:
            ops = tuple(str(params[f"edge{i}"]) for i in range(len(NB201_EDGES)))
        except KeyError as exc:
            raise ValueError(f"missing parameter {exc.args[0]!r}") from None
        return self.validate(NB201Arch(ops))

    def config(self) -> dict[str, Any]:
        return {}


@register_space("nb201")
def nb201() -> NB201Space:
    return NB201Space()
