"""``hwnas device``: latency targets, their measurements and latency models."""

from __future__ import annotations

from pathlib import Path

import typer

from service.cli.common import emit, fail, open_runtime
from service.cli.output import Column, emit_record, emit_table
from service.cli.progress import progress_reporter
from service.domain import devices
from service.domain.views import DeviceOut, PredictorOut

app = typer.Typer(
    help=(
        "Register target devices and give each an accurate latency model from <=10 "
        "measurements: measure this machine for real, or submit latencies measured elsewhere."
    ),
    no_args_is_help=True,
)


@app.command("add")
def add_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Device name (letters, digits, '.', '_', '-')."),
    kind: str = typer.Option(
        "remote", "--kind", help=f"One of: {', '.join(devices.DEVICE_KINDS)}."
    ),
    description: str = typer.Option("", "--description", "-d", help="Free text."),
    batch_size: int = typer.Option(1, "--batch-size", help="Batch size latencies refer to."),
) -> None:
    """Register a device whose latencies you will submit (kind remote), or describe
    one by hand. `hwnas device measure` registers this machine's backends itself."""
    with open_runtime(ctx) as rt, rt.session() as s:
        device = devices.create_device(
            s, name, kind=kind, description=description, batch_size=batch_size
        )
        emit(ctx, DeviceOut.json_of(device), [f"device {device.name} ({device.kind}) registered"])


@app.command("list")
def list_cmd(ctx: typer.Context) -> None:
    """List registered devices."""
    with open_runtime(ctx) as rt, rt.session() as s:
        rows = [DeviceOut.json_of(d) for d in devices.list_devices(s)]
        emit_table(
            ctx,
            rows,
            [
                Column("device", "name"),
                Column("kind", "kind"),
                Column("backend", "backend"),
                Column("threads", "threads", "right"),
                Column("batch", "batch_size", "right"),
                Column("description", "description"),
            ],
            empty="no devices: `hwnas device add NAME` or `hwnas device measure`",
        )


@app.command("show")
def show_cmd(ctx: typer.Context, name: str = typer.Argument(..., help="Device name.")) -> None:
    """Show a device and how many latencies are stored for it."""
    with open_runtime(ctx) as rt, rt.session() as s:
        device = devices.get_device(s, name)
        data = DeviceOut.json_of(device)
        data["n_measurements"] = len(devices.list_measurements(s, device))
        emit_record(ctx, data, title=f"device {device.name}")


@app.command("remove")
def remove_cmd(ctx: typer.Context, name: str = typer.Argument(..., help="Device name.")) -> None:
    """Remove a device with its measurements and latency models."""
    with open_runtime(ctx) as rt, rt.session() as s:
        devices.remove_device(s, name)
        emit(ctx, {"removed": name}, [f"device {name} removed"])


@app.command("measure")
def measure_cmd(
    ctx: typer.Context,
    space: str = typer.Option(
        "ofa-mbv3-tiny", "--space", help="Search space to model latency for."
    ),
    backend: str = typer.Option(
        "torch-cpu", "--backend", help="torch-cpu, onnxruntime-cpu or torch-cuda."
    ),
    threads: int = typer.Option(1, "--threads", help="Threads (part of the device identity)."),
    batch: int = typer.Option(1, "--batch", help="Batch size (part of the device identity)."),
    name: str | None = typer.Option(
        None, "--name", help="Device name (default <host>-<backend>-t<n>-b<n>)."
    ),
    extra: int = typer.Option(
        10,
        "--extra",
        help="Extra random subnets measured to report quality (held out, never chosen).",
    ),
    max_extra: int = typer.Option(
        0,
        "--max-extra",
        help="Active registration: measure up to N more subnets where the model is least "
        "sure, stopping when its uncertainty stops falling.",
    ),
    repeats: int = typer.Option(30, "--repeats", help="Timed runs per subnet (after warm-up)."),
) -> None:
    """Register this machine as a device: measure the reference subnets for real,
    adapt the meta-learned latency predictor, store model and measurements."""
    from service.orchestration.registration import measure_local

    if max_extra < 0:
        raise fail(ctx, f"--max-extra must be >= 0, got {max_extra}")
    with open_runtime(ctx) as rt:
        with progress_reporter("measuring") as progress:
            reg = measure_local(
                rt,
                space,
                backend=backend,
                threads=threads,
                batch=batch,
                name=name,
                n_extra=extra,
                max_extra=max_extra,
                repeats=repeats,
                on_progress=progress,
            )
        q = reg.quality
        lines = [
            f"device {reg.device}: latency model v{reg.version} for {reg.space} from {int(q['n_references'])} references"
        ]
        if reg.active:
            trace = reg.active["uncertainty_trace"]
            lines.append(
                f"active registration: measured {reg.active['max_extra_used']} more subnets "
                f"(of at most {max_extra}) where the model was least sure; stopped: "
                f"{reg.active['stopped']}; mean relative posterior sd {trace[0]:.1%} -> "
                f"{trace[-1]:.1%}"
            )
        if reg.uncertainty is not None:
            lines.append(f"mean relative sd of its predictions: {reg.uncertainty:.1%}")
        if "spearman_rho" in q:
            lines.append(
                f"on {int(q['n_extra'])} extra measured subnets: Spearman {q['spearman_rho']:.3f}, "
                f"within ±10%: {q.get('within_10pct', float('nan')):.0%}"
            )
        lines += [
            f"WARNING: this machine is too noisy to measure latency: {w}" for w in reg.warnings
        ]
        emit(ctx, reg.to_dict(), lines)


@app.command("references")
def references_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(
        ..., help="Device name (register it first with `hwnas device add`)."
    ),
    space: str = typer.Option("ofa-mbv3-tiny", "--space", help="Search space."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory for the ONNX files and runner."),
    batch: int | None = typer.Option(None, "--batch", help="Batch size (default: the device's)."),
    round_no: int | None = typer.Option(
        None,
        "--round",
        help="Write active round K instead: the subnets the device's model, adapted from "
        "its stored measurements, is least sure of (after the references are submitted).",
    ),
    count: int = typer.Option(5, "--count", help="Subnets in an active round."),
) -> None:
    """Write the reference subnets to measure on a remote device (ONNX + measure.py),
    or with --round K the K-th batch of active registration. The reference
    package (and each round's) is built once per content, then copied from the
    package cache (<home>/artifacts/references unless package_cache_dir is set)."""
    from service.orchestration.registration import reference_package, round_package

    with open_runtime(ctx) as rt:
        if round_no is None:
            with progress_reporter("reference package") as progress:
                info = reference_package(rt, name, space, out, batch=batch, on_progress=progress)
            wrote = (
                f"wrote {len(info['files'])} reference subnets (ONNX, measure.py) to {out}"
                if info["files"]
                else f"wrote the {len(info['references'])} reference architectures to "
                f"{out / 'manifest.json'}"
            )
            lines = [wrote, info["next"]]
        else:
            with progress_reporter(f"active round {round_no}") as progress:
                info = round_package(
                    rt, name, space, out, round_no, count=count, batch=batch, on_progress=progress
                )
            lines = [
                f"wrote active round {round_no} for {name}: {len(info['files'])} subnets its "
                f"model is least sure of (mean relative sd now {info['uncertainty']:.1%}, from "
                f"{info['n_measured_before']} stored measurements) to {out}",
                info["next"],
            ]
        emit(ctx, info, lines)


@app.command("submit")
def submit_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Device name."),
    space: str | None = typer.Option(
        None, "--space", help="Search space (default ofa-mbv3-tiny; with --job, the job's)."
    ),
    file: Path = typer.Option(
        ..., "--file", "-f", help="measure.py's JSON lines, or {reference_ms, extra}."
    ),
    job: int | None = typer.Option(
        None,
        "--job",
        help="The latencies verify this search job's candidates (`hwnas search verify`).",
    ),
) -> None:
    """Submit latencies measured on the device: the reference subnets (adapts and
    stores its latency model), or with --job a search's candidates (re-ranks its answer)."""
    from service.orchestration.registration import submit_latency_file

    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(ctx, f"cannot read {file}: {exc}") from None
    if job is not None:
        from service.orchestration.verification import submit_verification

        with open_runtime(ctx) as rt:
            out = submit_verification(rt, name, space, text, job)
        result = out["result"]
        emit(ctx, out, [f"search job {job} is {out['state']}: {result.get('message')}"])
        return
    space = space or "ofa-mbv3-tiny"
    with open_runtime(ctx) as rt:
        reg = submit_latency_file(rt, name, space, text)
        lines = [
            f"device {reg.device}: latency model v{reg.version} for {reg.space} ({reg.n_measurements} measurements)"
        ]
        if reg.uncertainty is not None:
            before = reg.active.get("uncertainty_before")
            was = f" (was {before:.1%})" if before is not None else ""
            lines.append(f"mean relative sd of its predictions: {reg.uncertainty:.1%}{was}")
        emit(ctx, reg.to_dict(), lines)


@app.command("models")
def models_cmd(ctx: typer.Context, name: str = typer.Argument(..., help="Device name.")) -> None:
    """List the device's stored latency models (versions and quality)."""
    from service.domain import predictor_records

    with open_runtime(ctx) as rt, rt.session() as s:
        device = devices.get_device(s, name)
        rows = predictor_records.list_predictors(s, kind="latency", device_id=device.id)
        data = [PredictorOut.json_of(r) for r in rows]
        emit_table(
            ctx,
            data,
            [
                Column("version", "version", "right"),
                Column("space", "space_name"),
                Column("measurements", "n_train", "right"),
                Column("quality", "metrics"),
                Column("created", "created_at"),
            ],
            empty=f"device {name} has no latency models",
        )
