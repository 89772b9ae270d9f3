"""``hwnas quickstart``: the main job, end to end."""

from __future__ import annotations

import json
import logging
import time

import typer

from service.cli.common import open_runtime


def quickstart(
    ctx: typer.Context,
    seed: int = typer.Option(0, "--seed", help="Random seed of every step."),
    smoke: bool = typer.Option(False, "--smoke", help="Smallest sizes: checks every step quickly."),
    train: bool = typer.Option(
        False,
        "--train",
        help="Train the supernet from scratch (the shipped one's recipe, with a progress "
        "bar and ETA) instead of searching the weights shipped with hwnas.",
    ),
) -> None:
    """Run the main job end to end on the embedded database and bundled data:
    search NAS-Bench-201, take the shipped supernet (or --train one), register
    this CPU, search the supernet, export the best subnet and plot the search.
    A second run reuses everything stored by the first."""
    import optuna

    # Imported here: the main job pulls in Optuna and torch, which other
    # commands (and `hwnas --help`) must not pay for.
    from service.orchestration.quickstart import QuickstartOptions, run_quickstart

    logging.getLogger("alembic").setLevel(logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = time.monotonic()
    with open_runtime(ctx) as rt:
        typer.echo(f"hwnas home: {rt.settings.home}  database: {rt.settings.resolved_database_url}")
        opts = (
            QuickstartOptions.smoke(seed, train=train)
            if smoke
            else QuickstartOptions(seed=seed, train=train)
        )
        out = run_quickstart(rt, opts, typer.echo)
        summary = rt.settings.home / "quickstart.json"
        summary.write_text(json.dumps(out, indent=2, default=str))
    typer.echo(f"done in {time.monotonic() - start:.0f} s; summary written to {summary}")
