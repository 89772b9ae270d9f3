"""Rebuild the shipped supernets.

    nice python -m supernets.build_pretrained [--name ofa-mbv3-tiny-digits-hard]
        [--workdir runs/pretrained] [--out supernets/pretrained]

Trains each supernet with the recorded command below (``python -m
supernets.launch ...``; resumable: rerun the same command after a kill),
then writes the final checkpoint as float16 into ``supernets/pretrained/``
with a ``build`` record (the command, the manifest's per-phase records and
timings, the date). Training is deterministic for a given torch build and
thread count, so a rebuild reproduces the shipped weights up to
floating-point differences between machines.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from supernets.launch import TrainRequest
from supernets.pretrained import PRETRAINED_SUPERNETS
from supernets.train import CHECKPOINT_FORMAT, read_manifest

__all__ = ["RECIPES", "main", "shrink_checkpoint"]

DEFAULT_OUT = Path(__file__).resolve().parent / "pretrained"

#: The recorded training request of each shipped supernet: run as
#: ``python -m supernets.launch <request.to_argv(run_dir)>`` (what ``hwnas
#: supernet train`` and ``hwnas quickstart --train`` run too). One thread:
#: the shared 2-core machine it was built on ran other jobs meanwhile.
RECIPES: dict[str, TrainRequest] = {
    "ofa-mbv3-tiny-digits-hard": TrainRequest(
        space="ofa-mbv3-tiny",
        dataset="digits-hard",
        schedule="deps-max-res",
        epochs=10,
        lr=0.05,
        threads=1,
    ),
}


def shrink_checkpoint(src: Path, dst: Path, build: dict[str, Any]) -> Path:
    """Copy a phase checkpoint with float16 weights and a ``build`` record."""
    payload: dict[str, Any] = torch.load(src, map_location="cpu", weights_only=True)
    if payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{str(src)!r} is not a {CHECKPOINT_FORMAT} checkpoint")
    payload["state_dict"] = {
        k: v.half() if v.is_floating_point() else v for k, v in payload["state_dict"].items()
    }
    payload["build"] = build
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, dst)
    return dst


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m supernets.build_pretrained")
    parser.add_argument("--name", nargs="+", default=sorted(RECIPES), choices=sorted(RECIPES))
    parser.add_argument("--workdir", type=Path, default=Path("runs/pretrained"))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    for name in args.name:
        run_dir = args.workdir / name
        request = RECIPES[name]
        command = [sys.executable, "-m", "supernets.launch", *request.to_argv(run_dir)]
        print("$ " + shlex.join(command[1:]), flush=True)
        start = time.perf_counter()
        subprocess.run(command, check=True)
        manifest = read_manifest(run_dir)
        build = {
            "command": shlex.join(["python", *command[1:]]),
            "request": asdict(request),
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "seconds_this_call": round(time.perf_counter() - start, 1),
            "phases": manifest["phases"],
            "torch": str(torch.__version__),  # a plain str: weights_only loads it
            "description": PRETRAINED_SUPERNETS[name],
        }
        final = run_dir / str(manifest["final_checkpoint"])
        dst = shrink_checkpoint(final, args.out / f"{name}.pt", build)
        print(f"{name}: {final} -> {dst} ({dst.stat().st_size / 1e6:.2f} MB)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
