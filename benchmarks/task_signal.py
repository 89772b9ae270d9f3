"""Does the task separate subnets? Holdout accuracy of random subnets of a supernet.

    nice python benchmarks/task_signal.py [--checkpoint PATH] [--n 40] [--seed 0]

Samples ``--n`` random subnets of the supernet (default: the shipped
``ofa-mbv3-tiny-digits-hard``), measures each for real (BN recalibrated on
2,000 training images, holdout accuracy) and reports the spread: the 5th-95th
percentile range must be at least 5 points for an accuracy predictor and a
search to have something to find (target of the main job). Resumable: each
measured subnet is appended to the results file as it finishes, and a rerun
with the same arguments skips what is there.

Writes ``benchmarks/results/task_signal.json`` and ``task_signal.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_SPREAD = 5.0


def _load(checkpoint: str | None) -> tuple[Any, Any, Any, str]:
    from supernets import load_dataset
    from supernets.pretrained import load_pretrained_supernet
    from supernets.train import load_supernet

    if checkpoint is None:
        space, net, meta = load_pretrained_supernet()
        label = "shipped ofa-mbv3-tiny-digits-hard"
    else:
        space, net, meta = load_supernet(checkpoint)
        label = checkpoint
    return space, net, load_dataset(meta["dataset"]), label


def _table(result: dict[str, Any]) -> str:
    accs = np.array([r["accuracy"] for r in result["subnets"]])
    p5, p50, p95 = np.percentile(accs, [5, 50, 95])
    lines = [
        "# Task signal: holdout accuracy of random subnets",
        "",
        f"Supernet: {result['supernet']}; dataset `{result['dataset']}` "
        f"({result['n_holdout']} holdout images, one image = {100 / result['n_holdout']:.3f} "
        "points). Each subnet BN-recalibrated on 2,000 training images.",
        f"Command: `{result['command']}`; load average {result['load_average']}.",
        "",
        "| subnets | min | p5 | median | p95 | max | p5-p95 spread | target |",
        "|---|---|---|---|---|---|---|---|",
        f"| {accs.size} | {accs.min():.2f}% | {p5:.2f}% | {p50:.2f}% | {p95:.2f}% | "
        f"{accs.max():.2f}% | **{p95 - p5:.2f}** points | >= {TARGET_SPREAD:g} "
        f"({'met' if p95 - p5 >= TARGET_SPREAD else 'NOT met'}) |",
        "",
        "| resolution | subnets | mean accuracy |",
        "|---|---|---|",
    ]
    res = np.array([r["arch"]["r"] for r in result["subnets"]])
    for r in sorted(set(res.tolist())):
        lines.append(f"| {r} | {(res == r).sum()} | {accs[res == r].mean():.2f}% |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=None, help="a run directory or .pt file")
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from supernets import evaluate_subnet

    space, net, dataset, label = _load(args.checkpoint)
    path = args.out / "task_signal.json"
    key = {"supernet": label, "seed": args.seed}
    result: dict[str, Any] = {}
    if path.is_file():
        old = json.loads(path.read_text())
        if {k: old.get(k) for k in key} == key:
            result = old  # resume
    if not result:
        result = {
            **key,
            "dataset": str(dataset.spec),
            "n_holdout": dataset.n_holdout,
            "subnets": [],
        }
    given = list(sys.argv[1:] if argv is None else argv)
    result["command"] = " ".join(["python benchmarks/task_signal.py", *given])
    rng = np.random.default_rng(args.seed)
    archs = [space.sample(rng) for _ in range(args.n)]
    args.out.mkdir(parents=True, exist_ok=True)
    for i, arch in enumerate(archs):
        if i < len(result["subnets"]):
            continue
        t0 = time.perf_counter()
        ev = evaluate_subnet(net, arch, dataset)
        result["subnets"].append(
            {"arch": arch.to_dict(), "accuracy": ev.accuracy, "seconds": time.perf_counter() - t0}
        )
        print(f"[{i + 1}/{args.n}] r{arch.r} accuracy {ev.accuracy:.2f}%", flush=True)
        path.write_text(json.dumps(result, indent=1) + "\n")
    result["load_average"] = [round(v, 1) for v in os.getloadavg()]
    path.write_text(json.dumps(result, indent=1) + "\n")
    table = _table(result)
    (args.out / "task_signal.md").write_text(table)
    print(table)
    return result


if __name__ == "__main__":
    main()
