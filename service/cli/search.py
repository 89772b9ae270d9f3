"""``hwnas search``: submit search jobs, follow them, cancel them."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer

from service.cli.common import emit, fail, open_runtime
from service.domain import jobs, searches
from service.domain.views import JobOut
from service.orchestration.device_latency import check_latency_available

app = typer.Typer(
    help=(
        "Submit searches for the most accurate subnet under a latency budget; a worker "
        "(`hwnas worker`) runs them: predictors propose, real evaluations decide."
    ),
    no_args_is_help=True,
)


def build_spec(spec_file: Path | None, overrides: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if spec_file is not None:
        try:
            spec = json.loads(spec_file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise fail(f"cannot read spec file {spec_file}: {exc}") from None
        if not isinstance(spec, dict):
            raise fail(f"spec file {spec_file} must hold a JSON object")
    spec.update({k: v for k, v in overrides.items() if v is not None})
    return spec


@app.command("submit")
def submit_cmd(
    ctx: typer.Context,
    supernet: str | None = typer.Option(
        None, "--supernet", "-s", help="Supernet or tabular space name."
    ),
    device: str | None = typer.Option(None, "--device", "-d", help="Device the budget applies to."),
    budget_ms: float | None = typer.Option(None, "--budget-ms", "-b", help="Latency budget (ms)."),
    n_evaluations: int | None = typer.Option(
        None, "--evaluations", "-n", help="Real evaluations allowed."
    ),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Real evaluations per round."),
    max_macs: int | None = typer.Option(None, "--max-macs", help="Hard limit on MACs."),
    max_params: int | None = typer.Option(None, "--max-params", help="Hard limit on parameters."),
    time_budget_s: float | None = typer.Option(None, "--time-budget-s", help="Wall-clock limit."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed."),
    name: str = typer.Option("", "--name", help="A name for the job."),
    spec_file: Path | None = typer.Option(
        None, "--spec", help="JSON spec file; options override it."
    ),
) -> None:
    """Queue a search job (validated now, run by a worker)."""
    for flag, value in (("--budget-ms", budget_ms), ("--time-budget-s", time_budget_s)):
        if value is not None and not math.isfinite(value):
            raise fail(f"{flag} must be a finite number, got {value}")
    spec = build_spec(
        spec_file,
        {
            "supernet": supernet,
            "device": device,
            "latency_budget_ms": budget_ms,
            "n_evaluations": n_evaluations,
            "batch_size": batch_size,
            "max_macs": max_macs,
            "max_params": max_params,
            "time_budget_s": time_budget_s,
            "seed": seed,
        },
    )
    with open_runtime(ctx) as rt, rt.session() as s:
        job = searches.submit_search(s, spec, name=name, check_latency=check_latency_available)
        emit(
            ctx,
            JobOut.json_of(job),
            [f"queued search job {job.id} ({job.name}); run `hwnas worker` to process it"],
        )


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    state: str | None = typer.Option(None, "--state", help="Only jobs in this state."),
    limit: int = typer.Option(50, "--limit", help="At most this many (newest first)."),
) -> None:
    """List search jobs, newest first."""
    with open_runtime(ctx) as rt, rt.session() as s:
        rows = [JobOut.json_of(j) for j in jobs.list_jobs(s, state=state, limit=limit)]
        emit(
            ctx,
            rows,
            [
                f"{r['id']:>5} {r['state']:<10} {r['progress']:>5.0%} {r['n_evaluations']:>5} evals  {r['name']}"
                for r in rows
            ]
            or ["no search jobs"],
        )


@app.command("show")
def show_cmd(ctx: typer.Context, job_id: int = typer.Argument(..., help="Job id.")) -> None:
    """Show a job's state, progress, result or error."""
    with open_runtime(ctx) as rt, rt.session() as s:
        data = JobOut.json_of(jobs.get_job(s, job_id))
        emit(ctx, data, [f"{k}: {json.dumps(v, default=str)}" for k, v in data.items()])


@app.command("cancel")
def cancel_cmd(ctx: typer.Context, job_id: int = typer.Argument(..., help="Job id.")) -> None:
    """Cancel a queued or running job (its evaluated trials are kept)."""
    with open_runtime(ctx) as rt, rt.session() as s:
        job = jobs.cancel_job(s, job_id)
        emit(ctx, JobOut.json_of(job), [f"search job {job.id} cancelled"])
