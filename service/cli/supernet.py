"""``hwnas supernet``: train, evaluate, list and export once-for-all supernets."""

from __future__ import annotations

import typer

from service.cli.common import emit, open_hwnas
from service.db import Supernet
from service.domain import supernets

app = typer.Typer(
    help=(
        "Train a once-for-all supernet with progressive shrinking on your data, evaluate its "
        "subnets (BN-recalibrated, holdout accuracy), list the registered ones."
    ),
    no_args_is_help=True,
)


def supernet_dict(row: Supernet) -> dict[str, object]:
    return {
        "name": row.name,
        "space": row.space_name,
        "space_config": row.space_config,
        "dataset": row.dataset,
        "n_classes": row.n_classes,
        "checkpoint": row.checkpoint_path,
        "status": row.status,
        "metrics": row.metrics,
        "created_at": row.created_at,
    }


@app.command("list")
def list_cmd(ctx: typer.Context) -> None:
    """List registered supernets and tabular spaces."""
    with open_hwnas(ctx) as hw, hw.session() as s:
        rows = [supernet_dict(r) for r in supernets.list_supernets(s)]
        emit(
            ctx,
            rows,
            [
                f"{r['name']:<28} {r['space']:<16} {r['status']:<9} {r['checkpoint'] or '(tabular)'}"
                for r in rows
            ]
            or ["no supernets"],
        )


@app.command("show")
def show_cmd(ctx: typer.Context, name: str = typer.Argument(..., help="Supernet name.")) -> None:
    """Show a supernet's space, dataset, checkpoint and metrics."""
    with open_hwnas(ctx) as hw, hw.session() as s:
        data = supernet_dict(supernets.get_supernet(s, name))
        emit(ctx, data, [f"{k}: {v}" for k, v in data.items()])


@app.command("register-benchmark")
def register_benchmark_cmd(
    ctx: typer.Context,
    name: str = typer.Argument("nb201", help="Bundled benchmark space (nb201)."),
) -> None:
    """Register a bundled benchmark space (zero training) and its measured devices."""
    from service.benchmarks import register_benchmark

    with open_hwnas(ctx) as hw, hw.session() as s:
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
