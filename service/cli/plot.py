"""``hwnas plot``: the stored results as PNG files."""

from __future__ import annotations

from pathlib import Path

import typer

from service.cli.common import emit, open_runtime
from service.domain import devices, jobs, supernet_records

app = typer.Typer(
    help="Draw stored results as PNG: a Pareto front with its budget line, a search's "
    "progress, a device's predicted vs measured latency.",
    no_args_is_help=True,
)

_OUT = typer.Option(..., "--out", "-o", help="PNG file to write.")


@app.command("pareto")
def pareto_cmd(
    ctx: typer.Context,
    supernet: str = typer.Option(..., "--supernet", "-s", help="Supernet or tabular space name."),
    device: str = typer.Option(..., "--device", "-d", help="Device name."),
    budget_ms: float | None = typer.Option(
        None, "--budget-ms", "-b", help="Draw this budget and the best subnet under it."
    ),
    out: Path = _OUT,
) -> None:
    """Every evaluated subnet (accuracy against latency), the front, the budget."""
    from service.orchestration.plots import pareto_png

    with open_runtime(ctx) as rt, rt.read_session() as s:
        sn, dev = supernet_records.get_supernet(s, supernet), devices.get_device(s, device)
        path = pareto_png(s, sn, dev, out, budget_ms=budget_ms)
    emit(ctx, {"file": str(path)}, [f"wrote {path}"])


@app.command("progress")
def progress_cmd(
    ctx: typer.Context, job_id: int = typer.Argument(..., help="Search job id."), out: Path = _OUT
) -> None:
    """A search job's real evaluations and its best feasible accuracy so far."""
    from service.orchestration.plots import progress_png

    with open_runtime(ctx) as rt, rt.read_session() as s:
        path = progress_png(s, jobs.get_job(s, job_id), out)
    emit(ctx, {"file": str(path)}, [f"wrote {path}"])


@app.command("latency")
def latency_cmd(
    ctx: typer.Context,
    device: str = typer.Option(..., "--device", "-d", help="Device name."),
    supernet: str = typer.Option(
        ..., "--supernet", "-s", help="Supernet whose space the measurements are in."
    ),
    out: Path = _OUT,
) -> None:
    """A device's stored latency measurements against the model's predictions."""
    from service.orchestration.plots import latency_png

    with open_runtime(ctx) as rt, rt.read_session() as s:
        sn, dev = supernet_records.get_supernet(s, supernet), devices.get_device(s, device)
        path = latency_png(s, sn, dev, out)
    emit(ctx, {"file": str(path)}, [f"wrote {path}"])
