"""Search jobs per minute with 1 and 2 workers, and the SQL statements a job
issues per real evaluation.

Queues ``--jobs`` searches (NB201 with the bundled Pixel 3 table: no training,
so what is timed is the search and its bookkeeping) and runs them with each
worker count in ``--workers``; workers are processes of their own, started
together once each has opened the database. A separate job run in this
process counts every SQL statement (the service's tables, progress reports,
Optuna's RDB storage) per real evaluation. Prints a table, writes
``benchmarks/results/worker_throughput.{md,json}``, and prints as its last
line the JSON object.

    python benchmarks/worker_throughput.py [--jobs 6] [--evaluations 20]
        [--workers 1,2] [--backends sqlite,postgres]

PostgreSQL: ``--postgres-url`` or ``HWNAS_TEST_POSTGRES_URL`` (a scratch schema
is created and dropped per run).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
import uuid
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
SPEC = {"supernet": "nb201", "device": "nb201-pixel3", "latency_budget_ms": 20.0, "batch_size": 5}


def _open(url: str, home: str) -> Any:
    from service.runtime import Runtime
    from service.settings import load_settings

    return Runtime.open(load_settings(home=home, database_url=url), check_schema=False)


def _prepare(url: str, home: str, n_jobs: int, n_evaluations: int, seed: int) -> None:
    from service.db import upgrade
    from service.domain import searches
    from service.orchestration.benchmarks import register_benchmark
    from service.orchestration.device_latency import check_budget

    with _open(url, home) as rt:
        upgrade(rt.engine)
        with rt.session() as s:
            register_benchmark(s)
            for k in range(n_jobs):
                spec = {**SPEC, "n_evaluations": n_evaluations, "seed": seed + k}
                searches.submit_search(s, spec, check_latency=check_budget)


def _work(url: str, home: str, ready: Any, go: Any, out: Any) -> None:
    """One worker process: open, say ready, wait for the start, run until idle."""
    from service.orchestration.worker import Worker

    with _open(url, home) as rt:
        worker = Worker(rt)
        ready.release()
        go.wait()
        done = worker.run(exit_when_idle=True)
        out.put((done, time.time()))


def _throughput(url: str, home: str, n_workers: int, n_jobs: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    ready, go, out = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_work, args=(url, home, ready, go, out)) for _ in range(n_workers)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire()
    start = time.time()
    go.set()
    finished = [out.get() for _ in procs]
    for p in procs:
        p.join()
    done = sum(n for n, _ in finished)
    if done != n_jobs:
        raise RuntimeError(f"{n_workers} worker(s) ran {done} of {n_jobs} jobs")
    seconds = max(t for _, t in finished) - start
    return {"seconds": round(seconds, 1), "jobs_per_min": round(n_jobs / seconds * 60, 2)}


def _statements(url: str, home: str, n_evaluations: int, seed: int) -> dict[str, Any]:
    """Statements per real evaluation of one job, on a worker that already ran
    one (its caches warm, as in a long-running worker)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from service.orchestration.worker import Worker

    _prepare(url, home, 1, n_evaluations, seed)
    with _open(url, home) as rt:
        worker = Worker(rt)
        worker.run(exit_when_idle=True)
        _prepare(url, home, 1, n_evaluations, seed + 1)
        count = [0]

        def on_statement(*_args: Any) -> None:
            count[0] += 1

        event.listen(Engine, "before_cursor_execute", on_statement)
        t0 = time.perf_counter()
        try:
            worker.run(exit_when_idle=True)
        finally:
            event.remove(Engine, "before_cursor_execute", on_statement)
        seconds = time.perf_counter() - t0
    return {
        "statements_per_evaluation": round(count[0] / n_evaluations, 1),
        "job_s_warm": round(seconds, 1),
    }


def _backend(url_for: Any, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with url_for() as (url, home):
        out.update(_statements(url, home, args.evaluations, args.seed))
    for n in args.worker_counts:
        with url_for() as (url, home):
            _prepare(url, home, args.jobs, args.evaluations, args.seed)
            out[f"workers_{n}"] = _throughput(url, home, n, args.jobs)
        print(f"  {n} worker(s): {out[f'workers_{n}']}", file=sys.stderr, flush=True)
    return out


class _SQLite:
    def __enter__(self) -> tuple[str, str]:
        self.tmp = tempfile.TemporaryDirectory()
        return f"sqlite:///{Path(self.tmp.name) / 'bench.db'}", self.tmp.name

    def __exit__(self, *exc: object) -> None:
        self.tmp.cleanup()


class _Postgres:
    def __init__(self, base: str) -> None:
        self.base = base

    def __enter__(self) -> tuple[str, str]:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        self.schema = f"bench_{uuid.uuid4().hex[:8]}"
        self.admin = create_engine(self.base)
        with self.admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{self.schema}"'))
        url = make_url(self.base).update_query_dict({"options": f"-csearch_path={self.schema}"})
        self.tmp = tempfile.TemporaryDirectory()
        return url.render_as_string(hide_password=False), self.tmp.name

    def __exit__(self, *exc: object) -> None:
        from sqlalchemy import text

        with self.admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{self.schema}" CASCADE'))
        self.admin.dispose()
        self.tmp.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=6)
    parser.add_argument("--evaluations", type=int, default=20, help="real evaluations per job")
    parser.add_argument("--workers", default="1,2", help="worker counts to time")
    parser.add_argument("--backends", default="sqlite")
    parser.add_argument("--postgres-url", default=os.environ.get("HWNAS_TEST_POSTGRES_URL"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        args.worker_counts = [int(w) for w in args.workers.split(",") if w.strip()]
    except ValueError:
        parser.error(f"--workers must be comma-separated integers, got {args.workers!r}")
    if args.jobs < 1 or args.evaluations < 5 or not args.worker_counts:
        parser.error("--jobs must be >= 1, --evaluations >= 5, --workers non-empty")
    if any(w < 1 for w in args.worker_counts):
        parser.error("worker counts must be >= 1")

    load_before = os.getloadavg()[0]
    results: dict[str, Any] = {}
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        print(f"{backend}:", file=sys.stderr, flush=True)
        if backend == "sqlite":
            results[backend] = _backend(_SQLite, args)
        elif backend == "postgres":
            if not args.postgres_url:
                parser.error("postgres needs --postgres-url or HWNAS_TEST_POSTGRES_URL")
            results[backend] = _backend(partial(_Postgres, args.postgres_url), args)
        else:
            parser.error(f"unknown backend {backend!r}; use sqlite and/or postgres")

    counts = args.worker_counts
    lines = [
        f"# Worker throughput ({args.jobs} NB201 search jobs x {args.evaluations} real "
        "evaluations, bundled Pixel 3 table)",
        "",
        "| backend | "
        + " | ".join(f"{n} worker(s): jobs/min (s)" for n in counts)
        + " | statements per evaluation | one job, warm worker, s |",
        "|---|" + "---|" * len(counts) + "---|---|",
    ]
    for backend, r in results.items():
        cells = [
            f"{r[f'workers_{n}']['jobs_per_min']} ({r[f'workers_{n}']['seconds']})" for n in counts
        ]
        lines.append(
            f"| {backend} | "
            + " | ".join(cells)
            + f" | {r['statements_per_evaluation']} | {r['job_s_warm']} |"
        )
    lines += [
        "",
        "Workers are processes started together after opening the database; a job's time "
        "includes its search (predictor fits, inner search) and all bookkeeping.",
        f"Load average (1 min) {load_before:.2f} before, {os.getloadavg()[0]:.2f} after.",
    ]
    table = "\n".join(lines)
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "worker_throughput.md").write_text(table + "\n")
    (RESULTS / "worker_throughput.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
