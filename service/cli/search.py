"""``hwnas search``: submit search jobs, follow them, cancel them."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer

from service.cli.common import emit, fail, open_runtime
from service.cli.output import Column, emit_record, emit_table
from service.cli.progress import progress_reporter
from service.domain import jobs, searches
from service.domain.job_progress import job_view
from service.domain.views import JobOut
from service.orchestration.device_latency import check_budget

app = typer.Typer(
    help=(
        "Submit searches for the most accurate subnet under a latency budget; a worker "
        "(`hwnas worker`) runs them: predictors propose, real evaluations decide."
    ),
    no_args_is_help=True,
)


def build_spec(
    ctx: typer.Context, spec_file: Path | None, overrides: dict[str, Any]
) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if spec_file is not None:
        try:
            spec = json.loads(spec_file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise fail(ctx, f"cannot read spec file {spec_file}: {exc}") from None
        if not isinstance(spec, dict):
            raise fail(ctx, f"spec file {spec_file} must hold a JSON object")
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
    feasibility_confidence: float | None = typer.Option(
        None,
        "--confidence",
        help="P(latency <= budget) a predicted latency must reach (0.5-1, default 0.9).",
    ),
    verified_feasibility_confidence: float | None = typer.Option(
        None,
        "--verified-confidence",
        help="The same, while exploring a search whose answer is measured (0-1, default 0.3).",
    ),
    max_latency_measurements: int | None = typer.Option(
        None,
        "--measurements",
        help="Subnets whose latency is measured on the device to verify the answer (default 10).",
    ),
) -> None:
    """Queue a search job (validated now, run by a worker)."""
    for flag, value in (("--budget-ms", budget_ms), ("--time-budget-s", time_budget_s)):
        if value is not None and not math.isfinite(value):
            raise fail(ctx, f"{flag} must be a finite number, got {value}")
    spec = build_spec(
        ctx,
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
            "feasibility_confidence": feasibility_confidence,
            "verified_feasibility_confidence": verified_feasibility_confidence,
            "max_latency_measurements": max_latency_measurements,
        },
    )
    with open_runtime(ctx) as rt, rt.session() as s:
        job = searches.submit_search(
            s,
            spec,
            name=name,
            check_latency=check_budget,
            warn=lambda m: typer.secho(f"warning: {m}", fg=typer.colors.YELLOW, err=True),
        )
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
        rows = [
            job_view(s, j).model_dump(mode="json")
            for j in jobs.list_jobs(s, state=state, limit=limit)
        ]
        emit_table(
            ctx,
            rows,
            [
                Column("id", "id", "right"),
                Column("state", "state"),
                Column("progress", lambda r: f"{r['progress']:.0%}", "right"),
                Column("evaluations", "n_evaluations", "right"),
                Column("best so far", "best_accuracy", "right"),
                Column(
                    "ETA s", lambda r: None if r["eta_s"] is None else round(r["eta_s"]), "right"
                ),
                Column("supernet", lambda r: r["spec"].get("supernet")),
                Column("device", lambda r: r["spec"].get("device")),
                Column("budget ms", lambda r: r["spec"].get("latency_budget_ms"), "right"),
                Column("name", "name"),
            ],
            empty="no search jobs: `hwnas search submit --help` shows how to start one",
        )


def _on_device(value: Any, device: str | None) -> Any:
    """A per-device value of a result (``{device: x}``), or a plain value as is."""
    return value.get(device) if isinstance(value, dict) else value


@app.command("show")
def show_cmd(ctx: typer.Context, job_id: int = typer.Argument(..., help="Job id.")) -> None:
    """Show a job's state, progress, result or error."""
    with open_runtime(ctx) as rt, rt.session() as s:
        data = job_view(s, jobs.get_job(s, job_id)).model_dump(mode="json")
        result = data["result"] or {}
        best = result.get("best") or {}
        device = data["spec"].get("device")
        summary = {
            **{k: data[k] for k in ("id", "name", "state", "attempts", "owner", "worker_id")},
            "progress": f"{data['progress']:.0%} of {data['spec'].get('n_evaluations')} evaluations",
            "search": {k: data["spec"].get(k) for k in ("supernet", "device", "latency_budget_ms")},
            "best so far": data["best_accuracy"],
            "time left s": None if data["eta_s"] is None else round(data["eta_s"]),
            "message": result.get("message"),
            "best accuracy": best.get("accuracy"),
            "best latency ms": _on_device(best.get("latency_ms"), device),
            "latency is": _on_device(best.get("latency_source"), device),
            "best arch": best.get("arch"),
            "error": data["error"],
            "created": data["created_at"],
            "finished": data["finished_at"],
        }
        emit_record(
            ctx,
            summary,
            title=f"search job {job_id} (`hwnas search show {job_id} --json` prints everything)",
            data_for_json=data,
        )


@app.command("cancel")
def cancel_cmd(ctx: typer.Context, job_id: int = typer.Argument(..., help="Job id.")) -> None:
    """Cancel a queued or running job (its evaluated trials are kept)."""
    with open_runtime(ctx) as rt, rt.session() as s:
        job = jobs.cancel_job(s, job_id)
        emit(ctx, JobOut.json_of(job), [f"search job {job.id} cancelled"])


@app.command("verify")
def verify_cmd(
    ctx: typer.Context,
    job_id: int = typer.Argument(..., help="A job awaiting verification."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory for the ONNX files and runner."),
) -> None:
    """Write the candidates of a job awaiting verification (a remote device) as ONNX
    files, with the standalone measure.py and a manifest naming the job."""
    from service.orchestration.verification import verification_package

    with open_runtime(ctx) as rt:
        with progress_reporter("verification package") as progress:
            info = verification_package(rt, job_id, out, on_progress=progress)
        emit(ctx, info, [f"wrote {len(info['files'])} candidate subnets to {out}", info["next"]])
