"""``hwnas device``: latency targets, their measurements and latency models."""

from __future__ import annotations

from typing import Any

import typer

from service.cli.common import emit, open_hwnas
from service.db import Device
from service.domain import devices

app = typer.Typer(
    help=(
        "Register target devices and give each an accurate latency model from <=10 "
        "measurements: measure this machine for real, or submit latencies measured elsewhere."
    ),
    no_args_is_help=True,
)


def device_dict(device: Device) -> dict[str, Any]:
    return {
        "name": device.name,
        "kind": device.kind,
        "description": device.description,
        "host": device.host,
        "backend": device.backend,
        "threads": device.threads,
        "batch_size": device.batch_size,
        "properties": device.properties,
        "created_at": device.created_at,
    }


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
    with open_hwnas(ctx) as hw, hw.session() as s:
        device = devices.create_device(
            s, name, kind=kind, description=description, batch_size=batch_size
        )
        emit(ctx, device_dict(device), [f"device {device.name} ({device.kind}) registered"])


@app.command("list")
def list_cmd(ctx: typer.Context) -> None:
    """List registered devices."""
    with open_hwnas(ctx) as hw, hw.session() as s:
        rows = [device_dict(d) for d in devices.list_devices(s)]
        emit(
            ctx,
            rows,
            [f"{r['name']:<32} {r['kind']:<18} {r['description']}" for r in rows] or ["no devices"],
        )


@app.command("show")
def show_cmd(ctx: typer.Context, name: str = typer.Argument(..., help="Device name.")) -> None:
    """Show a device and how many latencies are stored for it."""
    with open_hwnas(ctx) as hw, hw.session() as s:
        device = devices.get_device(s, name)
        data = device_dict(device)
        data["n_measurements"] = len(devices.list_measurements(s, device))
        emit(ctx, data, [f"{k}: {v}" for k, v in data.items()])


@app.command("remove")
def remove_cmd(ctx: typer.Context, name: str = typer.Argument(..., help="Device name.")) -> None:
    """Remove a device with its measurements and latency models."""
    with open_hwnas(ctx) as hw, hw.session() as s:
        devices.remove_device(s, name)
        emit(ctx, {"removed": name}, [f"device {name} removed"])
