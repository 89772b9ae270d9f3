"""``hwnas export``: a chosen subnet as ONNX / TorchScript / config + state_dict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from service.cli.common import emit, fail, open_hwnas
from service.domain import devices, subnets, supernets

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
    from service.supernet_ops import export_subnet

    chosen = [x is not None for x in (budget_ms, trial, arch)]
    if sum(chosen) != 1:
        raise fail("give exactly one of --budget-ms (with --device), --trial or --arch")
    bad = sorted(set(formats) - set(FORMATS))
    if bad:
        raise fail(f"unknown format(s) {bad}; choose from {list(FORMATS)}")
    provenance: dict[str, Any] = {}
    with open_hwnas(ctx) as hw:
        with hw.session() as s:
            row = supernets.get_supernet(s, supernet)
            if budget_ms is not None:
                if device is None:
                    raise fail("--budget-ms needs --device")
                found, closest = subnets.best_under_budget(
                    s, row, devices.get_device(s, device), budget_ms
                )
                if found is None:
                    fastest = (
                        f"; the fastest evaluated runs in {closest[0].latency_ms:.3f} ms"
                        if closest
                        else ""
                    )
                    raise fail(
                        f"no evaluated subnet of {supernet} meets {budget_ms} ms on {device}{fastest}"
                    )
                chosen_arch: Any = found.arch
                provenance = {
                    "selected_by": {"device": device, "budget_ms": budget_ms},
                    **found.to_dict(),
                }
            elif trial is not None:
                t = subnets.get_trial(s, trial)
                if t.supernet_id != row.id:
                    raise fail(f"trial {trial} does not belong to supernet {supernet}")
                chosen_arch = t.arch
                provenance = {
                    "trial_id": t.id,
                    "accuracy": t.accuracy,
                    "accuracy_source": t.accuracy_source,
                }
            else:
                try:
                    chosen_arch = json.loads(arch or "")
                except json.JSONDecodeError as exc:
                    raise fail(f"--arch is not JSON: {exc}") from None
        out.mkdir(parents=True, exist_ok=True)
        paths = export_subnet(
            hw,
            supernet,
            chosen_arch,
            out,
            formats=formats,
            n_bn_images=bn_images,
            provenance=provenance,
        )
        emit(ctx, {"files": paths, **provenance}, [f"{k}: {v}" for k, v in paths.items()])
