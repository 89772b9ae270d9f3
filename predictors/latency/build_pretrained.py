"""Rebuild the shipped meta-trained latency predictors.

    python -m predictors.latency.build_pretrained [--out DIR] [--spaces nb201 ofa-mbv3 ...]

Meta-trains :class:`MetaLatencyPredictor` (seed 0) on HELP's meta-train
devices over every architecture of the bundled tables and writes
``<space>.json`` into ``predictors/latency/pretrained/`` (or ``--out``). The
output is deterministic for a given hwnas version.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from predictors.latency.meta import MetaLatencyPredictor
from predictors.latency.pretrained import PRETRAINED_SPACES, meta_training_data

__all__ = ["build", "main"]

DEFAULT_OUT = Path(__file__).resolve().parent / "pretrained"


def build(space_name: str, *, seed: int = 0) -> MetaLatencyPredictor:
    """Meta-train the shipped predictor of ``space_name`` (nothing is written)."""
    space, archs, X, Y = meta_training_data(space_name, devices="train")
    meta = MetaLatencyPredictor(seed=seed).fit(X, Y)
    meta.metadata.update(
        {
            "space": space.name,
            "space_config": space.config(),
            "reference_archs": [
                space.canonical(archs[i]).to_dict() for i in meta.reference_indices
            ],
            "meta_train": {
                "data": "HELP (HayeonLee/HELP, MIT) via supernets.tables",
                "devices": sorted(Y),
                "n_archs": int(X.shape[0]),
            },
        }
    )
    return meta


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m predictors.latency.build_pretrained")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--spaces", nargs="+", default=list(PRETRAINED_SPACES))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.spaces:
        start = time.perf_counter()
        meta = build(name)
        path = meta.save(args.out / f"{name}.json")
        print(
            f"{name}: {meta.info['n_archs']} archs x {meta.info['n_sources']} devices, "
            f"target space {meta.target_space!r}, references {meta.reference_indices.tolist()} "
            f"-> {path} ({time.perf_counter() - start:.1f}s)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
