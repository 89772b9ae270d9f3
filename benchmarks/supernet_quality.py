"""Supernet quality: inherited subnets vs the same subnets trained from scratch.

On scikit-learn's digits (8x8, upsampled to the subnet's resolution) with the
``ofa-mbv3-tiny`` space, for the smallest, a middle and the largest subnet:

* holdout accuracy with weights inherited from a supernet trained with
  progressive shrinking, and from one trained with the DεpS-style schedule
  (both BN-recalibrated on training images before measuring);
* holdout accuracy of the same subnet trained alone from scratch for the same
  number of epochs as the supernet's whole schedule (also BN-recalibrated);
* training throughput (images/s) of each, on this machine's CPU.

Target: every inherited subnet within 1 point of its from-scratch accuracy.

    python benchmarks/supernet_quality.py                 # full run (about an hour on 2 busy CPU cores)
    python benchmarks/supernet_quality.py --epochs 6 --max-steps-per-epoch 2 --tag smoke

Writes ``benchmarks/results/supernet_quality[-TAG].json`` and ``.md``. With
``--trajectory WORKDIR`` (the ``--workdir`` of a finished run) it only measures
the three subnets on every phase checkpoint (``supernet_quality-trajectory.*``).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from supernets import (
    ImageDataset,
    OFAArch,
    OFAMobileNetV3Space,
    TrainConfig,
    build_subnet,
    evaluate_accuracy,
    evaluate_subnet,
    get_schedule,
    get_space,
    load_dataset,
    load_supernet,
    read_manifest,
    recalibrate_bn,
    train_subnet,
    train_supernet,
)
from supernets.evaluate import calibration_images

RESULTS = Path(__file__).resolve().parent / "results"
SCHEDULES = {"progressive-shrinking": "progressive shrinking (OFA)", "deps": "DεpS-style"}


def subnets(space: OFAMobileNetV3Space) -> dict[str, OFAArch]:
    n = space.n_slots

    def mid(values: tuple[int, ...]) -> int:
        return values[len(values) // 2]

    middle = OFAArch(
        (mid(space.kernel_sizes),) * n,
        (mid(space.expand_ratios),) * n,
        (mid(space.depths),) * space.n_stages,
        mid(space.resolutions),
    )
    return {"smallest": space.min_arch(), "middle": middle, "largest": space.max_arch()}


def _std_err_points(acc: float, n: int) -> float:
    """Binomial standard error of an accuracy (percent) measured on ``n`` images, in points."""
    p = acc / 100.0
    return 100 * math.sqrt(max(p * (1 - p), 1e-12) / n)


def _setup(args: argparse.Namespace) -> tuple[OFAMobileNetV3Space, ImageDataset, TrainConfig]:
    torch.set_num_threads(args.threads)
    space = get_space("ofa-mbv3-tiny")
    assert isinstance(space, OFAMobileNetV3Space)
    config = TrainConfig(
        batch_size=args.batch_size,
        seed=args.seed,
        num_threads=args.threads,
        eval_after_phase=False,
        max_steps_per_epoch=args.max_steps_per_epoch,
    )
    return space, load_dataset("digits"), config


def supernet_job(name: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Train one supernet with schedule ``name``; inherited accuracy of each subnet."""
    space, dataset, config = _setup(args)
    schedule = get_schedule(name, space, epochs=args.epochs, lr=args.lr)
    out = workdir / name
    train_supernet(space, dataset, schedule, out, config=config, progress=_printer(name))
    manifest = read_manifest(out)
    _, net, _ = load_supernet(out)
    images = sum(p["steps"] * config.batch_size for p in manifest["phases"])
    train_seconds = sum(p["seconds"] for p in manifest["phases"])
    entry: dict[str, Any] = {
        "phases": [
            {k: p[k] for k in ("name", "seconds", "images_per_s", "subnet_images_per_s")}
            | {"epochs": s.epochs, "subnets_per_step": s.subnets_per_step}
            for p, s in zip(manifest["phases"], schedule, strict=True)
        ],
        "train_seconds": round(train_seconds, 1),
        "images_per_s": round(images / train_seconds, 1),
        "accuracy": {},
    }
    for label, arch in subnets(space).items():
        ev = evaluate_subnet(net, arch, dataset, seed=args.seed)
        entry["accuracy"][label] = ev.accuracy
        print(f"[{name}] {label}: inherited accuracy {ev.accuracy:.2f}%", flush=True)
    return entry


def scratch_job(label: str, args: argparse.Namespace) -> dict[str, Any]:
    """Train subnet ``label`` alone from scratch for the same number of epochs."""
    space, dataset, config = _setup(args)
    arch = subnets(space)[label]
    torch.manual_seed(args.seed)
    subnet = build_subnet(space, arch, dataset.n_classes)
    warmup = round(args.epochs * 0.05, 2)
    t0 = time.perf_counter()
    train_subnet(
        subnet, dataset, epochs=args.epochs, lr=args.lr, warmup_epochs=warmup, config=config
    )
    seconds = time.perf_counter() - t0
    spe = config.steps_per_epoch(dataset.n_train)
    raw = evaluate_accuracy(subnet, dataset.holdout_x, dataset.holdout_y, arch.r)
    recalibrate_bn(subnet, calibration_images(dataset, arch.r, seed=args.seed))
    acc = evaluate_accuracy(subnet, dataset.holdout_x, dataset.holdout_y, arch.r)
    print(f"[scratch] {label}: accuracy {acc:.2f}% in {seconds:.0f}s", flush=True)
    return {
        "accuracy": acc,
        "accuracy_without_recalibration": raw,
        "train_seconds": round(seconds, 1),
        "images_per_s": round(args.epochs * spe * config.batch_size / seconds, 1),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    space, dataset, config = _setup(args)
    archs = subnets(space)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="supernet-quality-"))
    result: dict[str, Any] = {
        "dataset": dataset.summary(),
        "space": {"name": space.name, "config": space.config()},
        "epochs": args.epochs,
        "lr": args.lr,
        "seed": args.seed,
        "train_config": config.to_dict(),
        "subnets": {k: a.to_dict() for k, a in archs.items()},
        "bn_calibration_images": min(2000, dataset.n_train),
        "environment": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "torch_threads": args.threads,
            "parallel_jobs": args.jobs,
            "gpu": torch.cuda.is_available(),
            "note": "CPU only: no GPU was available in this session. The machine was "
            "shared with other jobs, so throughput numbers are lower bounds.",
            "load_average_start": os.getloadavg(),
        },
    }
    t0 = time.perf_counter()
    # Independent trainings, costliest first; "spawn" because forking a process
    # that already ran torch's OpenMP pool can deadlock.
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        supernet_futures = {n: pool.submit(supernet_job, n, args, workdir) for n in SCHEDULES}
        scratch_futures = {
            label: pool.submit(scratch_job, label, args) for label in reversed(list(archs))
        }
        result["schedules"] = {n: f.result() for n, f in supernet_futures.items()}
        result["scratch"] = {label: scratch_futures[label].result() for label in archs}
    result["wall_seconds"] = round(time.perf_counter() - t0, 1)

    n_hold = dataset.n_holdout
    for entry in result["schedules"].values():
        entry["gap_points"] = {
            label: round(entry["accuracy"][label] - result["scratch"][label]["accuracy"], 2)
            for label in archs
        }
        entry["within_1_point"] = all(g >= -1.0 for g in entry["gap_points"].values())
    result["holdout_std_err_points"] = {
        label: round(_std_err_points(result["scratch"][label]["accuracy"], n_hold), 2)
        for label in archs
    }
    result["environment"]["load_average_end"] = os.getloadavg()
    return result


def _printer(name: str) -> Any:
    def show(event: Any) -> None:
        if event.kind == "phase_end":
            m = event.metrics
            print(
                f"[{name}] phase {event.phase_index + 1}/{event.n_phases} {event.phase}: "
                f"{m['seconds']:.0f}s, {m['images_per_s']} img/s, loss {m['final_loss']:.3f}",
                flush=True,
            )

    return show


def markdown(result: dict[str, Any]) -> str:
    labels = list(result["subnets"])
    scratch = result["scratch"]
    env = result["environment"]
    lines = [
        "# Supernet quality: inherited vs from-scratch subnets",
        "",
        f"Dataset: scikit-learn digits ({result['dataset']['n_train']} training / "
        f"{result['dataset']['n_holdout']} holdout images, 10 classes), upsampled to the "
        f"subnet's resolution. Space `{result['space']['name']}`. Budget: {result['epochs']} "
        f"epochs for each supernet schedule and for each from-scratch subnet; batch "
        f"{result['train_config']['batch_size']}, peak LR {result['lr']}, SGD Nesterov. "
        f"Accuracy on the holdout split after BN recalibration on "
        f"{result['bn_calibration_images']} training images.",
        "",
        "| subnet | arch | from scratch | "
        + " | ".join(f"{SCHEDULES[s]} (gap)" for s in result["schedules"])
        + " |",
        "|---|---|---|" + "---|" * len(result["schedules"]),
    ]
    for label in labels:
        a = result["subnets"][label]
        desc = f"k{a['ks'][0]} e{a['e'][0]} d{a['d'][0]} r{a['r']}"
        cells = [
            f"{e['accuracy'][label]:.2f}% ({e['gap_points'][label]:+.2f})"
            for e in result["schedules"].values()
        ]
        lines.append(
            f"| {label} | {desc} | {scratch[label]['accuracy']:.2f}% | " + " | ".join(cells) + " |"
        )
    se = ", ".join(f"{k} ±{v}" for k, v in result["holdout_std_err_points"].items())
    lines += [
        "",
        f"Gap = inherited minus from-scratch, in points. One holdout image is "
        f"{100 / result['dataset']['n_holdout']:.2f} points; binomial standard error of the "
        f"from-scratch accuracies: {se} points.",
        "",
        "Target (every inherited subnet within 1 point of its from-scratch accuracy): "
        + ", ".join(
            f"{SCHEDULES[s]} **{'met' if e['within_1_point'] else 'not met'}**"
            for s, e in result["schedules"].items()
        )
        + ".",
        "",
        "## Training cost and throughput (CPU)",
        "",
        f"{env['note']} torch {env['torch']}, {env['cpu_count']} CPU cores, "
        f"{env['torch_threads']} torch thread(s) per training, {env['parallel_jobs']} trainings "
        f"in parallel ({result['wall_seconds'] / 60:.0f} min wall time in all); load average at start "
        f"{env['load_average_start'][0]:.1f}, at end {env['load_average_end'][0]:.1f}.",
        "",
        "| what | training time | images/s |",
        "|---|---|---|",
    ]
    for s, e in result["schedules"].items():
        lines.append(
            f"| supernet, {SCHEDULES[s]} ({result['epochs']} epochs, one supernet) | "
            f"{e['train_seconds']:.0f} s | {e['images_per_s']:.0f} |"
        )
    total_scratch = sum(v["train_seconds"] for v in scratch.values())
    for label in labels:
        lines.append(
            f"| {label} subnet alone ({result['epochs']} epochs) | "
            f"{scratch[label]['train_seconds']:.0f} s | {scratch[label]['images_per_s']:.0f} |"
        )
    lines += [
        f"| the three subnets alone, together | {total_scratch:.0f} s | |",
        "",
        "Images/s counts each training image once per step, although a supernet step "
        "trains several subnets on it (and runs the teacher). Per phase:",
        "",
        "| schedule | phase | epochs | subnets/step | time | images/s | subnet-images/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for s, e in result["schedules"].items():
        for p in e["phases"]:
            lines.append(
                f"| {SCHEDULES[s]} | {p['name']} | {p['epochs']} | {p['subnets_per_step']} | "
                f"{p['seconds']:.0f} s | {p['images_per_s']:.0f} | {p['subnet_images_per_s']:.0f} |"
            )
    return "\n".join(lines) + "\n"


def trajectory(workdir: Path, seed: int = 0) -> dict[str, Any]:
    """Inherited accuracy of the three subnets after every phase of each run in
    ``workdir`` (from the per-phase checkpoints): where a schedule gains or loses."""
    dataset = load_dataset("digits")
    out: dict[str, Any] = {}
    for name in SCHEDULES:
        manifest = read_manifest(workdir / name)
        rows = []
        for phase in manifest["phases"]:
            space, net, _ = load_supernet(workdir / name / phase["checkpoint"])
            assert isinstance(space, OFAMobileNetV3Space)
            acc = {
                label: evaluate_subnet(net, arch, dataset, seed=seed).accuracy
                for label, arch in subnets(space).items()
            }
            rows.append({"phase": phase["name"], "accuracy": acc})
        out[name] = rows
    return out


def trajectory_markdown(data: dict[str, Any]) -> str:
    lines = [
        "# Supernet quality: inherited accuracy after each phase",
        "",
        "Holdout accuracy (BN recalibrated) of the benchmark's three subnets, measured on "
        "each phase's checkpoint of the runs in `supernet_quality.json`.",
        "",
        "| schedule | after phase | smallest | middle | largest |",
        "|---|---|---|---|---|",
    ]
    for name, rows in data.items():
        for row in rows:
            acc = row["accuracy"]
            lines.append(
                f"| {SCHEDULES[name]} | {row['phase']} | "
                + " | ".join(f"{acc[k]:.2f}%" for k in ("smallest", "middle", "largest"))
                + " |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=24)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--max-steps-per-epoch", type=int, default=None, help="smoke runs only")
    p.add_argument("--workdir", default=None, help="where supernet runs go (default: a temp dir)")
    p.add_argument("--tag", default="", help="suffix of the results files")
    p.add_argument("--jobs", type=int, default=3, help="trainings run in parallel processes")
    p.add_argument(
        "--trajectory",
        metavar="WORKDIR",
        default=None,
        help="only evaluate every phase checkpoint of the runs in WORKDIR (no training)",
    )
    args = p.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.trajectory:
        torch.set_num_threads(args.threads)
        data = trajectory(Path(args.trajectory), args.seed)
        (RESULTS / "supernet_quality-trajectory.json").write_text(json.dumps(data, indent=2) + "\n")
        (RESULTS / "supernet_quality-trajectory.md").write_text(trajectory_markdown(data))
        print(trajectory_markdown(data))
        return
    result = run(args)
    stem = "supernet_quality" + (f"-{args.tag}" if args.tag else "")
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
