"""Rebuild the shipped meta-trained latency predictors.

    python -m predictors.latency.build_pretrained [--out DIR] [--spaces nb201 ofa-mbv3 ...]

Meta-trains :class:`MetaLatencyPredictor` (seed 0) on HELP's meta-train
devices over every architecture of the bundled tables (see
:func:`predictors.latency.pretrained.meta_train`) and writes ``<space>.json``
into ``predictors/latency/pretrained/`` (or ``--out``). Deterministic: the
same code and tables give the same files. Rebuild after changing a space's
defaults (e.g. the tiny preset's resolutions).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from predictors.latency.meta import MetaLatencyPredictor
from predictors.latency.pretrained import PRETRAINED_SPACES, meta_train

__all__ = ["main"]

DEFAULT_OUT = Path(__file__).resolve().parent / "pretrained"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m predictors.latency.build_pretrained")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--spaces", nargs="+", default=list(PRETRAINED_SPACES))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.spaces:
        start = time.perf_counter()
        path = args.out / f"{name}.json"
        # Keep the shipped reference architectures: devices registered (and
        # reference packages exported) with them stay valid after a rebuild.
        pinned = (
            MetaLatencyPredictor.load(path).reference_indices.tolist() if path.exists() else None
        )
        meta = meta_train(name, reference_indices=pinned)
        meta.save(path)
        print(
            f"{name}: {meta.info['n_archs']} archs x {meta.info['n_sources']} devices, "
            f"target space {meta.target_space!r}, references {meta.reference_indices.tolist()} "
            f"-> {path} ({time.perf_counter() - start:.1f}s)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
