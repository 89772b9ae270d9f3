"""Supernet quality on ``digits-hard``: the schedules side by side, inherited vs from scratch.

For each seed (which also seeds the task's train/holdout split), with the
``ofa-mbv3-tiny`` space:

* one supernet per schedule configuration: ``deps-max-res``, ``deps`` and
  OFA's ``progressive-shrinking`` at the same budget (``--epochs``), and
  progressive shrinking again at ``--ps-factor`` times that budget, where its
  six phases each get several epochs (at the equal budget its late phases,
  the only ones that train small expand ratios, get one or two epochs);
* inherited holdout accuracy (BN recalibrated) of the smallest, a middle and
  the largest subnet, and of ``--random-subnets`` random subnets drawn once
  per seed (the same ones for every schedule, so schedules compare paired);
* the smallest, middle and largest subnet trained alone from scratch for
  ``--epochs`` epochs (the equal-budget schedules' total), BN recalibrated.

Every (seed, supernet) and (seed, from-scratch subnet) is one unit of work.
A finished unit appends one JSON line to the rows file; a rerun skips
finished units and resumes an interrupted supernet training after its last
finished epoch, so the benchmark runs across sittings. ``--shard I/N`` runs
every N-th unit starting at I, so shards can run in parallel (or on other
machines sharing the rows file). ``--report`` only rebuilds the tables.

    nice -n 15 python benchmarks/supernet_quality.py                 # all units (~2.5 CPU-hours)
    nice -n 15 python benchmarks/supernet_quality.py --shard 0/2 &   # two halves in parallel
    nice -n 15 python benchmarks/supernet_quality.py --shard 1/2 &
    python benchmarks/supernet_quality.py --report
    python benchmarks/supernet_quality.py --epochs 2 --max-steps-per-epoch 2 --seeds 0 \\
        --random-subnets 2 --tag smoke                               # smoke run

Writes ``benchmarks/results/supernet_quality_hard[-TAG].{jsonl,json,md}``
(rows, summary, table); supernet runs go under ``--workdir``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from supernets import (
    DatasetSpec,
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
from supernets.schedules import total_epochs

RESULTS = Path(__file__).resolve().parent / "results"
DATASET = "digits-hard"
SPACE = "ofa-mbv3-tiny"
FIXED = ("smallest", "middle", "largest")
#: Two-sided 95 % Student t quantiles by degrees of freedom (n - 1).
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306}


@dataclass(frozen=True)
class ScheduleRun:
    """One supernet configuration of the benchmark."""

    label: str
    schedule: str
    #: Multiple of ``--epochs`` this configuration trains for.
    budget_factor: int = 1


def schedule_runs(ps_factor: int) -> list[ScheduleRun]:
    runs = [
        ScheduleRun("deps-max-res", "deps-max-res"),
        ScheduleRun("deps", "deps"),
        ScheduleRun("progressive-shrinking", "progressive-shrinking"),
    ]
    if ps_factor > 1:
        runs.append(
            ScheduleRun(f"progressive-shrinking-x{ps_factor}", "progressive-shrinking", ps_factor)
        )
    return runs


@dataclass(frozen=True)
class Unit:
    kind: str  # "supernet" | "scratch"
    seed: int
    key: str  # a ScheduleRun label, or a fixed subnet's label

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.seed}:{self.key}"


def units(seeds: Sequence[int], runs: Sequence[ScheduleRun]) -> list[Unit]:
    """All units in the order they run: the equal-budget supernets of every seed
    first (what the default schedule is chosen from), then the from-scratch
    subnets, then the larger budgets, so a short sitting answers the first
    question completely before starting the next."""
    equal = [r for r in runs if r.budget_factor == 1]
    larger = sorted((r for r in runs if r.budget_factor > 1), key=lambda r: r.budget_factor)
    out = [Unit("supernet", s, r.label) for s in seeds for r in equal]
    out += [Unit("scratch", s, label) for s in seeds for label in FIXED]
    out += [Unit("supernet", s, r.label) for r in larger for s in seeds]
    return out


def fixed_subnets(space: OFAMobileNetV3Space) -> dict[str, OFAArch]:
    def mid(values: tuple[int, ...]) -> int:
        return values[len(values) // 2]

    n = space.n_slots
    middle = OFAArch(
        (mid(space.kernel_sizes),) * n,
        (mid(space.expand_ratios),) * n,
        (mid(space.depths),) * space.n_stages,
        mid(space.resolutions),
    )
    return {"smallest": space.min_arch(), "middle": middle, "largest": space.max_arch()}


def random_subnets(space: OFAMobileNetV3Space, seed: int, n: int) -> list[OFAArch]:
    rng = np.random.default_rng([seed, 7919])
    return [space.sample(rng) for _ in range(n)]


# -- running units -------------------------------------------------------------------


def _space() -> OFAMobileNetV3Space:
    space = get_space(SPACE)
    assert isinstance(space, OFAMobileNetV3Space)
    return space


def _dataset(seed: int) -> ImageDataset:
    return load_dataset(DatasetSpec(kind=DATASET, seed=seed))


def _config(args: argparse.Namespace, seed: int) -> TrainConfig:
    return TrainConfig(
        batch_size=args.batch_size,
        seed=seed,
        num_threads=args.threads,
        eval_after_phase=False,
        max_steps_per_epoch=args.max_steps_per_epoch,
    )


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """What a row must have been measured with to be counted (checked on resume)."""
    return {
        "dataset": DATASET,
        "space": SPACE,
        "epochs": args.epochs,
        "ps_factor": args.ps_factor,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "random_subnets": args.random_subnets,
        "max_steps_per_epoch": args.max_steps_per_epoch,
    }


def run_supernet(unit: Unit, args: argparse.Namespace) -> dict[str, Any]:
    run = next(r for r in schedule_runs(args.ps_factor) if r.label == unit.key)
    space, dataset, config = _space(), _dataset(unit.seed), _config(args, unit.seed)
    epochs = args.epochs * run.budget_factor
    schedule = get_schedule(run.schedule, space, epochs=epochs, lr=args.lr)
    out = Path(args.workdir) / f"seed{unit.seed}" / run.label
    t0, cpu0 = time.perf_counter(), time.process_time()
    train_supernet(space, dataset, schedule, out, config=config, progress=_printer(unit))
    manifest = read_manifest(out)
    _, net, _ = load_supernet(out)
    t1 = time.perf_counter()
    accuracy = {
        label: evaluate_subnet(net, arch, dataset, seed=unit.seed).accuracy
        for label, arch in fixed_subnets(space).items()
    }
    randoms = [
        evaluate_subnet(net, arch, dataset, seed=unit.seed).accuracy
        for arch in random_subnets(space, unit.seed, args.random_subnets)
    ]
    print(f"[{unit.name}] inherited {accuracy}, random mean {np.mean(randoms):.2f}%", flush=True)
    return {
        "schedule": run.schedule,
        "epochs": total_epochs(schedule),
        "phases": [
            {"name": p.name, "epochs": p.epochs, "subnets_per_step": p.subnets_per_step}
            | {k: m[k] for k in ("seconds", "images_per_s")}
            for p, m in zip(schedule, manifest["phases"], strict=True)
        ],
        # Whole-run training time from the manifest (includes earlier sittings).
        "train_seconds": round(sum(p["seconds"] for p in manifest["phases"]), 1),
        "eval_seconds": round(time.perf_counter() - t1, 1),
        "cpu_seconds_this_sitting": round(time.process_time() - cpu0, 1),
        "wall_seconds_this_sitting": round(time.perf_counter() - t0, 1),
        "accuracy": accuracy,
        "random_accuracy": randoms,
    }


def run_scratch(unit: Unit, args: argparse.Namespace) -> dict[str, Any]:
    space, dataset, config = _space(), _dataset(unit.seed), _config(args, unit.seed)
    arch = fixed_subnets(space)[unit.key]
    torch.manual_seed(unit.seed)
    subnet = build_subnet(space, arch, dataset.n_classes)
    t0, cpu0 = time.perf_counter(), time.process_time()
    train_subnet(
        subnet,
        dataset,
        epochs=args.epochs,
        lr=args.lr,
        warmup_epochs=round(args.epochs * 0.05, 2),
        config=config,
    )
    seconds = time.perf_counter() - t0
    raw = evaluate_accuracy(subnet, dataset.holdout_x, dataset.holdout_y, arch.r)
    recalibrate_bn(subnet, calibration_images(dataset, arch.r, seed=unit.seed))
    acc = evaluate_accuracy(subnet, dataset.holdout_x, dataset.holdout_y, arch.r)
    print(f"[{unit.name}] from scratch {acc:.2f}% in {seconds:.0f} s", flush=True)
    return {
        "epochs": args.epochs,
        "accuracy": acc,
        "accuracy_without_recalibration": raw,
        "train_seconds": round(seconds, 1),
        "cpu_seconds_this_sitting": round(time.process_time() - cpu0, 1),
    }


def _printer(unit: Unit) -> Any:
    def show(event: Any) -> None:
        if event.kind == "phase_end":
            m = event.metrics
            print(
                f"[{unit.name}] phase {event.phase_index + 1}/{event.n_phases} {event.phase}: "
                f"{m['seconds']:.0f} s, {m['images_per_s']} img/s, loss {m['final_loss']:.3f}",
                flush=True,
            )

    return show


# -- rows ------------------------------------------------------------------------------


def read_rows(path: Path, wanted: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Finished rows measured with ``wanted`` settings, by unit name (last one wins)."""
    rows: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return rows
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if row["settings"] == wanted:
            rows[row["unit"]] = row
    return rows


def append_row(path: Path, row: dict[str, Any]) -> None:
    # One write of one line in append mode: shards appending to the same file
    # do not interleave their lines.
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")


def parse_shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard must look like I/N, got {text!r}") from None
    if not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"--shard I/N needs 0 <= I < N, got {text!r}")
    return i, n


# -- summary ---------------------------------------------------------------------------


def mean_ci(values: Iterable[float]) -> dict[str, Any]:
    """Mean and the half-width of its 95 % t interval over seeds (None below 2 values)."""
    v = [float(x) for x in values]
    if not v:
        return {"n": 0, "mean": None, "ci95": None}
    mean = sum(v) / len(v)
    if len(v) < 2:
        return {"n": 1, "mean": round(mean, 2), "ci95": None}
    sd = math.sqrt(sum((x - mean) ** 2 for x in v) / (len(v) - 1))
    t = _T95.get(len(v) - 1, 1.96)
    return {"n": len(v), "mean": round(mean, 2), "ci95": round(t * sd / math.sqrt(len(v)), 2)}


def summarise(rows: dict[str, dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    runs = schedule_runs(args.ps_factor)
    all_units = units(args.seeds, runs)
    done = {u.name: rows[u.name] for u in all_units if u.name in rows}
    scratch = {
        label: {
            r["seed"]: r["result"]["accuracy"]
            for r in done.values()
            if r["kind"] == "scratch" and r["key"] == label
        }
        for label in FIXED
    }
    schedules: dict[str, Any] = {}
    for run in runs:
        per_seed = {
            r["seed"]: r["result"]
            for r in done.values()
            if r["kind"] == "supernet" and r["key"] == run.label
        }
        entry: dict[str, Any] = {
            "schedule": run.schedule,
            "epochs": args.epochs * run.budget_factor,
            "seeds": sorted(per_seed),
            "train_seconds": mean_ci(v["train_seconds"] for v in per_seed.values()),
        }
        for label in FIXED:
            entry[label] = mean_ci(v["accuracy"][label] for v in per_seed.values())
            gaps = [
                v["accuracy"][label] - scratch[label][s]
                for s, v in per_seed.items()
                if s in scratch[label]
            ]
            entry[f"{label}_gap"] = mean_ci(gaps)
        entry["random_mean"] = mean_ci(np.mean(v["random_accuracy"]) for v in per_seed.values())
        entry["all_mean"] = mean_ci(_all_mean(v) for v in per_seed.values())
        schedules[run.label] = entry
    return {
        "settings": settings(args),
        "seeds": list(args.seeds),
        "units_done": sorted(done),
        "units_missing": [u.name for u in all_units if u.name not in done],
        "cpu_seconds_recorded": round(
            sum(r["result"].get("cpu_seconds_this_sitting", 0.0) for r in done.values()), 1
        ),
        "scratch": {label: mean_ci(scratch[label].values()) for label in FIXED},
        "schedules": schedules,
        "choice": choose(done, runs),
    }


def in_progress(workdir: Path, missing: Sequence[str], args: argparse.Namespace) -> list[str]:
    """How far each missing supernet's training got in ``workdir`` (a rerun
    resumes there): finished phases and epochs of the current one."""
    runs = {r.label: r for r in schedule_runs(args.ps_factor)}
    out = []
    for name in missing:
        kind, seed, key = name.split(":", 2)
        run_dir = workdir / f"seed{seed}" / key
        if kind != "supernet" or not (run_dir / "manifest.json").is_file():
            continue
        manifest = read_manifest(run_dir)
        epochs = sum(int(p["epochs"]) for p in manifest["schedule"])
        done = sum(int(p["epochs"]) for p in manifest["schedule"][: manifest["phases_completed"]])
        last = run_dir / "last.pt"
        if last.is_file():
            state = torch.load(last, map_location="cpu", weights_only=True)
            done += int(state.get("epochs_done", 0))
        total = args.epochs * runs[key].budget_factor
        out.append(f"{name}: {done} of {epochs if epochs else total} epochs trained")
    return out


def _all_mean(result: dict[str, Any]) -> float:
    values = [*result["accuracy"].values(), *result["random_accuracy"]]
    return float(np.mean(values))


def choose(done: dict[str, dict[str, Any]], runs: Sequence[ScheduleRun]) -> dict[str, Any]:
    """The best equal-budget schedule by mean inherited accuracy over all measured
    subnets (what ``supernet train`` defaults to), and its lead over every other
    configuration, larger budgets included: whether it holds in every seed where
    both ran with a paired 95 % interval above zero."""
    by_run: dict[str, dict[int, float]] = {}
    for run in runs:
        by_run[run.label] = {
            r["seed"]: _all_mean(r["result"])
            for r in done.values()
            if r["kind"] == "supernet" and r["key"] == run.label
        }
    equal = {r.label for r in runs if r.budget_factor == 1}
    scored = {k: float(np.mean(list(v.values()))) for k, v in by_run.items() if v and k in equal}
    if not scored:
        return {"best": None, "supported": False, "leads": {}}
    best = max(scored, key=lambda k: scored[k])
    leads: dict[str, Any] = {}
    supported = all(by_run[k] for k in by_run)
    for rival in by_run:
        if rival == best:
            continue
        seeds = sorted(set(by_run[best]) & set(by_run[rival]))
        diffs = [by_run[best][s] - by_run[rival][s] for s in seeds]
        lead = mean_ci(diffs)
        lead["every_seed"] = bool(diffs) and all(d > 0 for d in diffs)
        lead["holds"] = bool(
            lead["every_seed"] and lead["ci95"] is not None and lead["mean"] - lead["ci95"] > 0
        )
        leads[rival] = lead
        supported = supported and lead["holds"]
    return {"best": best, "supported": supported, "leads": leads}


def _cell(stat: dict[str, Any], signed: bool = False) -> str:
    if stat["mean"] is None:
        return "—"
    fmt = "+.2f" if signed else ".2f"
    ci = f" ± {stat['ci95']:.2f}" if stat["ci95"] is not None else ""
    return f"{stat['mean']:{fmt}}{ci} (n={stat['n']})"


def markdown(summary: dict[str, Any], env: dict[str, Any]) -> str:
    s = summary["settings"]
    lines = [
        "# Supernet quality on digits-hard: schedules side by side, inherited vs from scratch",
        "",
        f"Task `{s['dataset']}` (the split is seeded by the seed), space `{s['space']}`, "
        f"batch {s['batch_size']}, peak LR {s['lr']}, SGD Nesterov. Equal budget: "
        f"{s['epochs']} epochs per supernet and per from-scratch subnet; progressive "
        f"shrinking also at {s['ps_factor']}x. Accuracy on the holdout split after BN "
        "recalibration on 2,000 training images. Cells: mean over seeds ± the half-width "
        "of its 95 % t interval (n = seeds measured).",
        "",
        f"Seeds {summary['seeds']}: {len(summary['units_done'])} units done, "
        f"{len(summary['units_missing'])} missing"
        + (f" ({', '.join(summary['units_missing'])})" if summary["units_missing"] else "")
        + ".",
        "",
    ]
    if summary.get("in_progress"):
        lines += [
            "Interrupted trainings (a rerun with the same `--workdir` resumes them): "
            + "; ".join(summary["in_progress"])
            + ".",
            "",
        ]
    lines += [
        "## Inherited accuracy (%)",
        "",
        "| schedule | epochs | smallest | middle | largest | "
        f"{s['random_subnets']} random subnets | all measured |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, e in summary["schedules"].items():
        lines.append(
            f"| {label} | {e['epochs']} | {_cell(e['smallest'])} | {_cell(e['middle'])} | "
            f"{_cell(e['largest'])} | {_cell(e['random_mean'])} | {_cell(e['all_mean'])} |"
        )
    sc = summary["scratch"]
    lines += [
        f"| from scratch (each subnet alone) | {s['epochs']} | {_cell(sc['smallest'])} | "
        f"{_cell(sc['middle'])} | {_cell(sc['largest'])} | | |",
        "",
        "## Inherited minus from scratch (points, paired by seed)",
        "",
        "| schedule | smallest | middle | largest |",
        "|---|---|---|---|",
    ]
    for label, e in summary["schedules"].items():
        lines.append(
            f"| {label} | {_cell(e['smallest_gap'], True)} | {_cell(e['middle_gap'], True)} | "
            f"{_cell(e['largest_gap'], True)} |"
        )
    ch = summary["choice"]
    lines += ["", "## Default schedule", ""]
    if ch["best"] is None:
        lines.append("No equal-budget supernet measured yet.")
    else:
        leads = ", ".join(f"over {k}: {_cell(v, True)}" for k, v in ch["leads"].items())
        holds = [k for k, v in ch["leads"].items() if v.get("holds")]
        not_holds = [k for k, v in ch["leads"].items() if not v.get("holds")]
        lines.append(
            f"Best at the equal budget by mean inherited accuracy over all measured subnets "
            f"(`supernet train`'s default): **{ch['best']}** ({leads} points). Its lead holds "
            "(positive in every seed, paired 95 % interval above zero) over "
            f"{', '.join(holds) or 'none'}; not over {', '.join(not_holds) or 'none'}."
        )
    lines += [
        "",
        "## Cost",
        "",
        "| schedule | training time per supernet (s) |",
        "|---|---|",
    ]
    for label, e in summary["schedules"].items():
        lines.append(f"| {label} | {_cell(e['train_seconds'])} |")
    lines += [
        "",
        f"CPU time recorded by the finished units: {summary['cpu_seconds_recorded'] / 3600:.2f} h "
        f"(python {env['python']}, torch {env['torch']}, {env['cpu_count']} cores, "
        f"{env['threads']} thread per unit; load average when this table was written "
        f"{env['load_average'][0]:.1f}).",
    ]
    return "\n".join(lines) + "\n"


def environment(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "gpu": torch.cuda.is_available(),
        "load_average": list(os.getloadavg()),
    }


def write_report(rows_path: Path, stem: str, args: argparse.Namespace) -> str:
    summary = summarise(read_rows(rows_path, settings(args)), args)
    summary["in_progress"] = in_progress(Path(args.workdir), summary["units_missing"], args)
    env = environment(args)
    text = markdown(summary, env)
    (RESULTS / f"{stem}.json").write_text(
        json.dumps(summary | {"environment": env}, indent=2) + "\n"
    )
    (RESULTS / f"{stem}.md").write_text(text)
    return text


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=10, help="the equal budget (default 10)")
    p.add_argument(
        "--ps-factor", type=int, default=3, help="progressive shrinking's larger budget (x)"
    )
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--random-subnets", type=int, default=10)
    p.add_argument("--threads", type=int, default=1, help="torch threads per unit")
    p.add_argument("--max-steps-per-epoch", type=int, default=None, help="smoke runs only")
    p.add_argument("--shard", type=parse_shard, default=(0, 1), help="I/N: every N-th unit from I")
    p.add_argument("--workdir", default="runs/supernet_quality", help="supernet run directories")
    p.add_argument("--tag", default="", help="suffix of the results files")
    p.add_argument("--report", action="store_true", help="only rebuild the tables from the rows")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "supernet_quality_hard" + (f"-{args.tag}" if args.tag else "")
    rows_path = RESULTS / f"{stem}.jsonl"
    if not args.report:
        wanted = settings(args)
        todo = units(args.seeds, schedule_runs(args.ps_factor))
        index, count = args.shard
        for unit in todo[index::count]:
            if unit.name in read_rows(rows_path, wanted):
                continue
            print(f"[{unit.name}] start (load {os.getloadavg()[0]:.1f})", flush=True)
            runner = run_supernet if unit.kind == "supernet" else run_scratch
            result = runner(unit, args)
            append_row(
                rows_path,
                {"unit": unit.name, "kind": unit.kind, "seed": unit.seed, "key": unit.key}
                | {"settings": wanted, "result": result, "load_average": os.getloadavg()},
            )
    print(write_report(rows_path, stem, args))


if __name__ == "__main__":
    main()
