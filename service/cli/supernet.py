"""``hwnas supernet``: train, evaluate, list and export once-for-all supernets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from service.cli.common import emit, fail, open_runtime
from service.cli.export import subnet_cmd as export_subnet_cmd
from service.cli.output import Column, emit_record, emit_table
from service.domain import supernet_records
from service.domain.views import SupernetOut
from supernets.schedules import (
    DEFAULT_SCHEDULE,
    DEFAULT_SCHEDULE_WHY,
    available_schedules,
    schedule_info,
)


def _schedule_help() -> str:
    lines = []
    for name in available_schedules():
        info = schedule_info(name)
        default = f" (the default: {DEFAULT_SCHEDULE_WHY})"
        lines.append(
            f"{name}{default if name == DEFAULT_SCHEDULE else ''}: {info.summary}; "
            f"at least {info.min_epochs} epochs, default {info.default_epochs} epochs, "
            f"LR {info.default_lr}."
        )
    return " ".join(lines) + " Or a JSON file holding a list of phases."


_SCHEDULE_HELP = _schedule_help()

app = typer.Typer(
    help=(
        "Train a once-for-all supernet with progressive shrinking on your data, evaluate its "
        "subnets (BN-recalibrated, holdout accuracy), list the registered ones."
    ),
    no_args_is_help=True,
)


@app.command("list")
def list_cmd(ctx: typer.Context) -> None:
    """List registered supernets and tabular spaces."""
    with open_runtime(ctx) as rt, rt.session() as s:
        rows = [SupernetOut.json_of(r) for r in supernet_records.list_supernets(s)]
        emit_table(
            ctx,
            rows,
            [
                Column("supernet", "name"),
                Column("space", "space_name"),
                Column("status", "status"),
                Column("weights", lambda r: r["checkpoint_path"] or "(tabular benchmark)"),
            ],
            empty="no supernets: `hwnas supernet train NAME` or `hwnas supernet register-benchmark`",
        )


@app.command("show")
def show_cmd(ctx: typer.Context, name: str = typer.Argument(..., help="Supernet name.")) -> None:
    """Show a supernet's space, dataset, checkpoint and metrics."""
    with open_runtime(ctx) as rt, rt.session() as s:
        data = SupernetOut.json_of(supernet_records.get_supernet(s, name))
        emit_record(ctx, data, title=f"supernet {name}")


@app.command("remove")
def remove_cmd(ctx: typer.Context, name: str = typer.Argument(..., help="Supernet name.")) -> None:
    """Delete a supernet: its record, trials, predictors and its run directory."""
    from service.orchestration.training import remove_supernet

    with open_runtime(ctx) as rt:
        done = remove_supernet(rt, name)
        where = f" and {done['files_removed']}" if done["files_removed"] else ""
        emit(ctx, done, [f"supernet {name} removed{where}"])


@app.command("register-benchmark")
def register_benchmark_cmd(
    ctx: typer.Context,
    name: str = typer.Argument("nb201", help="Bundled benchmark space (nb201)."),
) -> None:
    """Register a bundled benchmark space (zero training) and its measured devices."""
    from service.orchestration.benchmarks import register_benchmark

    with open_runtime(ctx) as rt, rt.session() as s:
        reg = register_benchmark(s, name)
        emit(
            ctx,
            {
                "supernet": reg.supernet.name,
                "devices": [d.name for d in reg.devices],
                "created": reg.created,
            },
            [
                f"{reg.supernet.name}: {'registered' if reg.created else 'already registered'} "
                f"with {len(reg.devices)} devices (nb201-<device>)"
            ],
        )


@app.command("train")
def train_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Name to register the trained supernet under."),
    space: str = typer.Option("ofa-mbv3-tiny", "--space", help="ofa-mbv3-tiny or ofa-mbv3."),
    dataset: str = typer.Option(
        "digits",
        "--dataset",
        help="digits | digits-hard | folder:PATH (class per sub-directory) | npz:PATH.",
    ),
    schedule: str = typer.Option(DEFAULT_SCHEDULE, "--schedule", help=_SCHEDULE_HELP),
    epochs: int | None = typer.Option(
        None,
        "--epochs",
        help="Total epochs over all phases, at least the schedule's minimum (above). "
        "(default: the schedule's, listed under --schedule)",
    ),
    lr: float | None = typer.Option(
        None,
        "--lr",
        help="Peak learning rate. (default: the schedule's, listed under --schedule)",
    ),
    batch_size: int = typer.Option(64, "--batch-size", help="Global batch size."),
    seed: int = typer.Option(0, "--seed", help="Seed of data split, sampling and init."),
    max_steps: int | None = typer.Option(
        None,
        "--max-steps-per-epoch",
        help="Cap steps (smoke runs). (default: none, a full pass over the data)",
    ),
    threads: int | None = typer.Option(
        None, "--threads", help="CPU threads per process. (default: torch's, all cores)"
    ),
    nproc: int = typer.Option(1, "--nproc", help="Processes (torchrun + DDP; gloo on CPU)."),
    amp: bool = typer.Option(
        False,
        "--amp",
        help="Mixed precision (float16 autocast + grad scaling); CUDA only. (default: off)",
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Run directory (default <home>/supernets/NAME)."
    ),
) -> None:
    """Train a once-for-all supernet with a phase schedule and register it.
    Interrupted? Run the same command again: it resumes after the last finished epoch."""
    from tqdm import tqdm

    from service.orchestration.training import train_and_register
    from supernets.launch import TrainRequest

    bars: dict[str, Any] = {}

    def progress(event: Any) -> None:
        if event.kind == "phase_start":
            bars["bar"] = tqdm(
                total=event.total_steps,
                initial=event.step,
                desc=f"[{event.phase_index + 1}/{event.n_phases}] {event.phase}",
                unit="step",
                leave=True,
            )
        elif event.kind == "step" and "bar" in bars:
            bars["bar"].update(1)
            if event.loss is not None:
                bars["bar"].set_postfix(loss=f"{event.loss:.3f}", lr=f"{event.lr:.4f}")
        elif event.kind == "phase_end" and "bar" in bars:
            bars.pop("bar").close()

    with open_runtime(ctx) as rt:
        req = TrainRequest(
            space=space, dataset=dataset, schedule=schedule, epochs=epochs, lr=lr,
            batch_size=batch_size, seed=seed, max_steps_per_epoch=max_steps, threads=threads,
            amp=amp,
        )  # fmt: skip
        row = train_and_register(rt, name, req, nproc=nproc, out_dir=out, progress=progress)
        last = row.metrics["phases"][-1]
        accs = {k: v for k, v in last.items() if k.startswith("accuracy_")}
        emit(
            ctx,
            SupernetOut.json_of(row),
            [
                f"supernet {row.name} ready: {row.checkpoint_path}",
                f"holdout accuracy after the last phase: {accs}",
            ],
        )


@app.command("register")
def register_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Supernet name."),
    checkpoint: Path = typer.Option(..., "--checkpoint", help="A finished run directory."),
    description: str = typer.Option("", "--description", help="Free text."),
) -> None:
    """Register a supernet trained outside hwnas (e.g. torchrun -m supernets.launch)."""
    from service.orchestration.training import register_checkpoint

    with open_runtime(ctx) as rt:
        row = register_checkpoint(rt, name, checkpoint, description=description)
        emit(
            ctx,
            SupernetOut.json_of(row),
            [f"supernet {row.name} registered from {row.checkpoint_path}"],
        )


@app.command("import-ofa")
def import_ofa_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Name to register the imported supernet under."),
    checkpoint: Path = typer.Option(
        ..., "--checkpoint", help="OFA checkpoint, e.g. ofa_mbv3_d234_e346_k357_w1.0."
    ),
    width: float = typer.Option(1.0, "--width", help="Width multiplier: 1.0 or 1.2."),
    dataset: str | None = typer.Option(
        None,
        "--dataset",
        help=(
            "Your images (folder:PATH, one sub-directory per class, all classes present): "
            "BN recalibration and accuracy use disjoint parts. Without it, searches answer "
            "with a labelled proxy (largest MACs under the budget)."
        ),
    ),
    n_classes: int = typer.Option(1000, "--classes", help="Outputs of the network."),
    image_size: int = typer.Option(
        224, "--image-size", help="Stored image size (memory: N x 3 x S x S floats)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Where to write it (default <home>/supernets/NAME)."
    ),
    description: str = typer.Option("", "--description", help="Free text."),
) -> None:
    """Import a Once-for-All OFA-MobileNetV3 supernet (MIT HAN Lab's release) and register it."""
    from service.orchestration.training import import_ofa_supernet

    with open_runtime(ctx) as rt:
        row = import_ofa_supernet(
            rt, name, checkpoint, width_mult=width, dataset=dataset, n_classes=n_classes,
            image_size=image_size, out_dir=out, description=description,
        )  # fmt: skip
        data_line = (
            f"accuracy from {row.dataset.get('path')} (BN on its training split, accuracy on "
            "the disjoint holdout split)"
            if row.dataset
            else "no images: searches answer with a labelled proxy, not measured accuracy"
        )
        emit(
            ctx,
            SupernetOut.json_of(row),
            [f"supernet {row.name} ({row.space_name}) imported: {row.checkpoint_path}", data_line],
        )


@app.command("eval")
def eval_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Supernet name."),
    arch: list[str] = typer.Option([], "--arch", help="Arch config as JSON (repeatable)."),
    sample: int = typer.Option(0, "--sample", help="Also evaluate N random subnets."),
    extremes: bool = typer.Option(
        False, "--extremes", help="Also the smallest and largest subnet."
    ),
    bn_images: int = typer.Option(
        2000, "--bn-images", help="Training images for BN recalibration."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the random subnets."),
) -> None:
    """Measure subnets for real (BN-recalibrated, holdout accuracy); each result is
    stored as a measured trial, the training data of the accuracy predictor."""
    import numpy as np
    from tqdm import tqdm

    from service.orchestration.evaluation import evaluate_subnets
    from supernets import OFAMobileNetV3Space, space_from_config

    with open_runtime(ctx) as rt:
        with rt.session() as s:
            row = supernet_records.get_supernet(s, name)
            space = space_from_config(row.space_name, row.space_config)
        archs: list[Any] = [space.validate(a) for a in arch]
        if extremes:
            if not isinstance(space, OFAMobileNetV3Space):
                raise fail(ctx, f"--extremes needs an OFA space, {name} is {space.name}")
            archs += [space.min_arch(), space.max_arch()]
        rng = np.random.default_rng(seed)
        archs += [space.sample(rng) for _ in range(sample)]
        if not archs:
            raise fail(ctx, "nothing to evaluate: give --arch, --sample N or --extremes")
        with tqdm(total=len(archs), desc="evaluating", unit="subnet") as bar:
            results = evaluate_subnets(
                rt, name, archs, n_bn_images=bn_images, seed=seed, progress=lambda i: bar.update(1)
            )
        emit(
            ctx,
            results,
            [
                f"trial {r['trial_id']:>6}  accuracy {r['accuracy']:6.2f}%  r={r['resolution']}"
                for r in results
            ],
        )


@app.command("fit-predictor")
def fit_predictor_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Supernet name."),
    seed: int = typer.Option(0, "--seed", help="Seed."),
    tune: bool = typer.Option(False, "--tune", help="Tune hyper-parameters with Optuna (CV)."),
) -> None:
    """Fit the GBDT accuracy predictor on the supernet's measured subnets and store
    it as a new version with its cross-validated quality (Kendall tau, Spearman...)."""
    from service.orchestration.evaluation import fit_accuracy_predictor

    with open_runtime(ctx) as rt:
        out = fit_accuracy_predictor(rt, name, seed=seed, tune=True if tune else "auto")
        m = out["metrics"].get("metrics", out["metrics"])
        emit(
            ctx,
            out,
            [
                f"accuracy predictor v{out['version']} on {out['n_train']} subnets: "
                f"tau {m.get('kendall_tau', float('nan')):.3f}, rho {m.get('spearman_rho', float('nan')):.3f}"
            ],
        )


# ``hwnas supernet export`` is ``hwnas export subnet``: one implementation, two
# places a user looks for it.
app.command("export", help="Export a subnet with its weights (same as `hwnas export subnet`).")(
    export_subnet_cmd
)
