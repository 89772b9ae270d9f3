"""``hwnas worker``: run queued search jobs."""

from __future__ import annotations

import logging
import signal
from types import FrameType

import typer

from service.cli.common import emit, open_runtime

app = typer.Typer(help="Run queued search jobs; start as many workers as you like, on any machine.")


@app.callback(invoke_without_command=True)
def worker(
    ctx: typer.Context,
    max_jobs: int | None = typer.Option(None, "--max-jobs", help="Exit after this many jobs."),
    exit_when_idle: bool = typer.Option(
        False, "--exit-when-idle", help="Exit when no job is queued instead of waiting."
    ),
    worker_id: str | None = typer.Option(
        None, "--id", help="Worker name (default host:pid:random)."
    ),
) -> None:
    """Claim and run search jobs until stopped (Ctrl-C finishes the current evaluation)."""
    # Imported here: it pulls in Optuna, which other commands must not pay for.
    from service.orchestration.worker import Worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    with open_runtime(ctx) as rt:
        w = Worker(rt) if worker_id is None else Worker(rt, worker_id=worker_id)

        def stop(signum: int, _frame: FrameType | None) -> None:
            typer.echo(f"worker {w.worker_id}: stopping after the current evaluation", err=True)
            w.stop_event.set()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        done = w.run(max_jobs=max_jobs, exit_when_idle=exit_when_idle)
        emit(
            ctx,
            {"worker_id": w.worker_id, "jobs": done},
            [f"worker {w.worker_id} ran {done} job(s)"],
        )
