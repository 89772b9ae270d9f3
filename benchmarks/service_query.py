"""Latency of the best-subnet and Pareto queries with many stored trials.

Stores ``--trials`` trials (default 100,000: 5 supernets x 10 devices, every
trial with a latency on all 10 devices, one stored measurement per 50 trials)
through :func:`service.domain.subnets.bulk_record_trials`, then times
``GET /v1/query/best`` and ``GET /v1/query/pareto`` through the HTTP app
in-process (ASGI, auth on, the owner's read-only token: the whole request path,
owner filter included), for
each backend. Prints a table, writes ``benchmarks/results/service_query.{md,json}``,
and prints as its last line a JSON object
``{"sqlite": {"best_p50_ms": ..., "best_p99_ms": ..., ...}, "postgres": {...}}``.

    python benchmarks/service_query.py [--trials N] [--backends sqlite,postgres]

PostgreSQL: ``--postgres-url`` or ``HWNAS_TEST_POSTGRES_URL`` (a scratch schema
is created and dropped).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

N_SUPERNETS = 5
N_DEVICES = 10
RESULTS = ROOT / "benchmarks" / "results"


def _populate(rt: Any, n_trials: int, seed: int) -> dict[str, Any]:
    from service.domain import devices, subnets, supernet_records, tokens

    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    with rt.session() as s:
        _, secret = tokens.create_token(s, "bench", ("read",))
        nets = [
            supernet_records.register_supernet(
                s, f"sn{i}", space_name="nb201", space_config={}, status="ready", owner="bench"
            )
            for i in range(N_SUPERNETS)
        ]
        devs = [
            devices.create_device(s, f"dev{i}", kind="remote", owner="bench")
            for i in range(N_DEVICES)
        ]
        speed = rng.uniform(0.5, 2.0, size=N_DEVICES)
    per_net = n_trials // N_SUPERNETS
    for net in nets:
        batch: list[Any] = []
        for k in range(per_net):
            arch_hash = f"{net.id}-{k}-{rng.integers(1 << 40):x}"
            base = float(rng.uniform(1.0, 20.0))
            lat = {d.name: round(base * float(speed[j]), 4) for j, d in enumerate(devs)}
            primary = devs[k % N_DEVICES]
            batch.append(
                subnets.TrialIn(
                    space_name="nb201",
                    arch={"cell": arch_hash},
                    arch_hash=arch_hash,
                    accuracy=round(float(60 + 35 * rng.beta(5, 2)), 2),
                    supernet_id=net.id,
                    device_id=primary.id,
                    latency_ms=lat[primary.name],
                    latency_source="predicted",
                    latencies={
                        name: {"ms": ms, "source": "predicted"}
                        for name, ms in lat.items()
                        if name != primary.name
                    },
                )
            )
        with rt.session() as s:
            subnets.bulk_record_trials(s, batch)
            # Some architectures were measured for real on a device.
            for k in range(0, per_net, 50):
                t = batch[k]
                dev = devices.get_device(s, devs[k % N_DEVICES].name)
                devices.add_measurements(
                    s,
                    dev,
                    [
                        devices.MeasurementIn(
                            space_name="nb201",
                            arch=t.arch,
                            arch_hash=t.arch_hash,
                            latency_ms=float(rng.uniform(1.0, 30.0)),
                            method="bench",
                        )
                    ],
                )
    return {"secret": secret, "store_s": time.perf_counter() - t0}


def _params(kind: str, rng: np.random.Generator) -> dict[str, Any]:
    params: dict[str, Any] = {
        "supernet": f"sn{rng.integers(N_SUPERNETS)}",
        "device": f"dev{rng.integers(N_DEVICES)}",
    }
    if kind == "best":
        # Mostly feasible budgets, some too tight (the "closest" path).
        params["budget_ms"] = float(rng.choice([0.3, 2.0, 5.0, 10.0, 25.0]))
    return params


def _get(client: Any, kind: str, params: dict[str, Any], headers: dict[str, str]) -> None:
    response = client.get(f"/v1/query/{kind}", params=params, headers=headers)
    if response.status_code != 200:
        raise RuntimeError(f"{kind} {params}: {response.status_code} {response.text}")


def _time(client: Any, headers: dict[str, str], n: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    out: dict[str, float] = {}
    for kind in ("best", "pareto"):
        times = []
        cpu = 0.0
        for i in range(n):
            params = _params(kind, rng)
            c0, t0 = time.process_time(), time.perf_counter()
            _get(client, kind, params, headers)
            elapsed = (time.perf_counter() - t0) * 1000
            if i >= 5:  # warm-up excluded
                times.append(elapsed)
                cpu += time.process_time() - c0
        out[f"{kind}_p50_ms"] = round(float(np.percentile(times, 50)), 2)
        out[f"{kind}_p99_ms"] = round(float(np.percentile(times, 99)), 2)
        # CPU time of this process (all its threads) per request: what a
        # request costs whatever else runs on the machine.
        out[f"{kind}_cpu_ms"] = round(cpu / len(times) * 1000, 2)
        out[f"{kind}_peak_kib"] = _peak_kib(client, kind, headers, seed)
    return out


def _peak_kib(client: Any, kind: str, headers: dict[str, str], seed: int, n: int = 20) -> float:
    """The largest Python allocation peak of one request (tracemalloc; untimed:
    tracing slows every allocation). Bounded by the page size, not the trial count."""
    rng = np.random.default_rng(seed + 1)
    peak = 0
    for _ in range(n):
        params = _params(kind, rng)
        tracemalloc.start()
        try:
            _get(client, kind, params, headers)
            peak = max(peak, tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    return round(peak / 1024, 1)


def _run(url: str, n_trials: int, n_requests: int, seed: int) -> dict[str, Any]:
    from fastapi.testclient import TestClient
    from sqlalchemy import text

    from service.api import create_app
    from service.db import upgrade
    from service.runtime import Runtime
    from service.settings import load_settings

    with tempfile.TemporaryDirectory() as home:
        settings = load_settings(home=home, database_url=url, require_auth=True)
        with Runtime.open(settings, check_schema=False) as rt:
            upgrade(rt.engine)
            stored = _populate(rt, n_trials, seed)
            if rt.engine.dialect.name == "postgresql":
                # After a bulk load, as autovacuum would do shortly: without
                # statistics the planner guesses on a million fresh rows.
                with rt.engine.begin() as conn:
                    conn.execute(text("ANALYZE"))
            headers = {"Authorization": f"Bearer {stored['secret']}"}
            # One event loop for all requests, as a running server has (without
            # the context manager the test client starts one per request).
            with TestClient(create_app(rt)) as client:
                timings = _time(client, headers, n_requests, seed)
    return {**timings, "store_s": round(stored["store_s"], 1), "trials": n_trials}


def _postgres(base: str) -> tuple[str, Any]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return url.render_as_string(hide_password=False), drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--requests", type=int, default=205, help="per query kind (5 warm-up)")
    parser.add_argument("--postgres-url", default=os.environ.get("HWNAS_TEST_POSTGRES_URL"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.trials < N_SUPERNETS or args.requests < 10:
        parser.error("--trials must be >= 5 and --requests >= 10")

    load_before = os.getloadavg()[0]
    results: dict[str, Any] = {}
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                url = f"sqlite:///{Path(tmp) / 'bench.db'}"
                results[backend] = _run(url, args.trials, args.requests, args.seed)
        elif backend == "postgres":
            if not args.postgres_url:
                parser.error("postgres needs --postgres-url or HWNAS_TEST_POSTGRES_URL")
            url, drop = _postgres(args.postgres_url)
            try:
                results[backend] = _run(url, args.trials, args.requests, args.seed)
            finally:
                drop()
        else:
            parser.error(f"unknown backend {backend!r}; use sqlite and/or postgres")
        print(f"{backend}: {results[backend]}", file=sys.stderr, flush=True)

    lines = [
        f"# Service query latency ({args.trials:,} trials, {N_SUPERNETS} supernets x "
        f"{N_DEVICES} devices, {args.requests - 5} timed requests per query)",
        "",
        "| backend | best p50 ms | best p99 ms | pareto p50 ms | pareto p99 ms "
        "| best CPU ms | pareto CPU ms | best peak KiB | pareto peak KiB | store s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for backend, r in results.items():
        lines.append(
            f"| {backend} | {r['best_p50_ms']} | {r['best_p99_ms']} | {r['pareto_p50_ms']} "
            f"| {r['pareto_p99_ms']} | {r['best_cpu_ms']} | {r['pareto_cpu_ms']} "
            f"| {r['best_peak_kib']} | {r['pareto_peak_kib']} | {r['store_s']} |"
        )
    lines += [
        "",
        "In-process ASGI requests (TestClient, one event loop) with the owner's read-only "
        "token, auth on. CPU ms: this process's CPU time (all threads: client, event loop, "
        "handler) per timed request; on a crowded machine it grows too (caches shared). "
        "Peak KiB: the largest Python allocation peak of one request (tracemalloc, 20 "
        "untimed requests).",
        f"Load average (1 min) {load_before:.2f} before, {os.getloadavg()[0]:.2f} after.",
    ]
    table = "\n".join(lines)
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "service_query.md").write_text(table + "\n")
    (RESULTS / "service_query.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
