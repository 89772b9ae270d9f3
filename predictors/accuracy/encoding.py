"""Which encoding columns belong to which choice of a search space.

The predictor only sees encoded vectors; people and the search loop think in
choices (``space.choices()``: ``"edge3" -> [ops]``, ``"ks7" -> [3, 5, 7]``).
This map links the two without knowing any space's layout: it *probes* the
encoder, changing one parameter at a time in sampled contexts and watching
which columns move. So it works for every registered space, including
encodings where a choice only shows when it is active (OFA's skipped blocks).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

from supernets.spaces import SearchSpace

__all__ = ["EncodingMap", "encoding_map"]


@dataclass(frozen=True)
class EncodingMap:
    """Columns of ``space.encode`` per parameter and per (parameter, value).

    ``controlled[param]``: every column that changes when ``param`` changes in
    some context (e.g. OFA's ``d0`` controls the columns of blocks 3 and 4 of
    stage 0). ``indicators[(param, value)]``: columns that are 1 exactly when
    ``param == value`` and belong to no other choice (a one-hot bit). Values
    without such a column (OFA depth: implied by which blocks are present)
    have no entry.
    """

    feature_dim: int
    choices: dict[str, list[Any]]
    controlled: dict[str, tuple[int, ...]]
    indicators: dict[tuple[str, Hashable], tuple[int, ...]]


def encoding_map(space: SearchSpace[Any], *, n_contexts: int = 32, seed: int = 0) -> EncodingMap:
    """Probe ``space``'s encoder: ``n_contexts`` sampled architectures, every
    value of every parameter in each (cost: contexts x total values encodings)."""
    if n_contexts < 1:
        raise ValueError(f"n_contexts must be >= 1, got {n_contexts}")
    rng = np.random.default_rng(seed)
    choices = space.choices()
    dim = space.feature_dim
    controlled: dict[str, set[int]] = {p: set() for p in choices}
    # For each (param, value): columns that were on in every context where the
    # param mattered, and columns seen on at all for that value.
    on_always: dict[tuple[str, Hashable], np.ndarray] = {}
    for _ in range(n_contexts):
        params = space.to_params(space.sample(rng))
        for param, values in choices.items():
            rows: list[np.ndarray | None] = []
            for value in values:
                try:
                    rows.append(space.encode(space.from_params({**params, param: value})))
                except ValueError:  # value not allowed in this context: no evidence
                    rows.append(None)
            valid = [r for r in rows if r is not None]
            if len(valid) < 2:
                continue
            stack = np.stack(valid)
            moving = np.flatnonzero((stack != stack[0]).any(axis=0))
            if moving.size == 0:  # the param does not matter here (e.g. a skipped block)
                continue
            controlled[param].update(int(c) for c in moving)
            for value, row in zip(values, rows, strict=True):
                if row is None:
                    continue
                on = np.zeros(dim, dtype=bool)
                on[moving] = row[moving] > 0.5
                key = (param, _key(value))
                on_always[key] = on if key not in on_always else on_always[key] & on
    # An indicator must be specific: a column on for two different choices
    # (OFA's block-4 kernel bit is "on" for ks15=7 and for d3=4) is not one.
    owners: dict[int, list[tuple[str, Hashable]]] = {}
    for key, on in on_always.items():
        for col in np.flatnonzero(on).tolist():
            owners.setdefault(col, []).append(key)
    indicators: dict[tuple[str, Hashable], tuple[int, ...]] = {}
    for col, keys in sorted(owners.items()):
        if len(keys) == 1:
            indicators[keys[0]] = (*indicators.get(keys[0], ()), col)
    return EncodingMap(
        feature_dim=dim,
        choices={p: list(v) for p, v in choices.items()},
        controlled={p: tuple(sorted(cols)) for p, cols in controlled.items()},
        indicators=indicators,
    )


def _key(value: Any) -> Hashable:
    # Choice values are str / int / float in every space; lists (if a space
    # ever used them) become tuples so that they can key a dict.
    return tuple(value) if isinstance(value, list) else value
