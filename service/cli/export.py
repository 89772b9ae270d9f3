"""``hwnas export``: a chosen subnet as ONNX / TorchScript / config + state_dict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from service.cli.common import emit, fail, open_runtime
from service.cli.progress import progress_reporter

app = typer.Typer(
    help=(
        "Export a subnet with its weights (BN recalibrated): the best under a latency budget "
        "on a device, a stored trial, or any arch config."
    ),
    no_args_is_help=True,
)

FORMATS = ("state_dict", "torchscript", "onnx")


@app.command("subnet")
def subnet_cmd(
    ctx: typer.Context,
    supernet: str = typer.Option(..., "--supernet", "-s", help="Supernet name."),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory."),
    device: str | None = typer.Option(
        None, "--device", "-d", help="With --budget-ms: pick the best."
    ),
    budget_ms: float | None = typer.Option(None, "--budget-ms", "-b", help="Latency budget (ms)."),
    trial: int | None = typer.Option(None, "--trial", help="Export this stored trial's arch."),
    arch: str | None = typer.Option(None, "--arch", help="Export this arch config (JSON)."),
    formats: list[str] = typer.Option(
        list(FORMATS), "--format", "-f", help="state_dict, torchscript, onnx."
    ),
    bn_images: int = typer.Option(
        2000, "--bn-images", help="Training images for BN recalibration."
    ),
) -> None:
    """Export one subnet; exactly one of --budget-ms (with --device), --trial, --arch."""
    from service.orchestration.export import choose_subnet, export_subnet

    bad = sorted(set(formats) - set(FORMATS))
    if bad:
        raise fail(ctx, f"unknown format(s) {bad}; choose from {list(FORMATS)}")
    config: Any = None
    if arch is not None:
        try:
            config = json.loads(arch)
        except json.JSONDecodeError as exc:
            raise fail(ctx, f"--arch is not JSON: {exc}") from None
    with open_runtime(ctx) as rt:
        with rt.session() as s:
            chosen_arch, provenance = choose_subnet(
                s, supernet, arch=config, trial_id=trial, device=device, budget_ms=budget_ms
            )
        out.mkdir(parents=True, exist_ok=True)
        with progress_reporter("exporting") as progress:
            paths = export_subnet(
                rt,
                supernet,
                chosen_arch,
                out,
                formats=formats,
                n_bn_images=bn_images,
                provenance=provenance,
                on_progress=progress,
            )
        emit(ctx, {"files": paths, **provenance}, [f"{k}: {v}" for k, v in paths.items()])
