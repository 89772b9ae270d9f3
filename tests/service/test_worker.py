"""Workers running real searches (zero-training nb201 space) through the queue:
resume after a killed worker, several workers on one database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from sqlalchemy import func, select

from service.db import Trial
from service.domain import jobs, searches, subnets
from service.orchestration.benchmarks import register_benchmark
from service.orchestration.device_latency import check_budget
from service.orchestration.worker import Worker
from service.runtime import Runtime
from service.settings import load_settings

SPEC = {"supernet": "nb201", "device": "nb201-pixel3", "latency_budget_ms": 20.0, "batch_size": 5}


def _open(url: str, **overrides) -> Runtime:
    rt = Runtime.open(load_settings(database_url=url, **overrides), check_schema=False)
    from service.db import upgrade

    upgrade(rt.engine)
    return rt


def _submit(rt: Runtime, n_evaluations: int, seed: int = 0) -> int:
    with rt.session() as s:
        register_benchmark(s)
        job = searches.submit_search(
            s,
            {**SPEC, "n_evaluations": n_evaluations, "seed": seed},
            check_latency=check_budget,
        )
        return job.id


def _worker_env(url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HWNAS_DATABASE_URL=url,
        HWNAS_WORKER_LEASE_S="2",
        HWNAS_WORKER_HEARTBEAT_S="0.3",
        HWNAS_WORKER_POLL_S="0.2",
    )
    return env


def _hwnas_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "service.cli", *args]


def test_worker_runs_a_search_and_records_every_trial(sqlite_url: str) -> None:
    rt = _open(sqlite_url)
    try:
        job_id = _submit(rt, 20)
        assert Worker(rt).run(exit_when_idle=True) == 1
        with rt.session() as s:
            job = jobs.get_job(s, job_id)
            assert job.state == "succeeded", job.error
            assert job.result is not None and job.result["n_evaluations"] == 20
            trials = subnets.list_trials(s, job_id=job_id)
            assert len(trials) == 20 == len({t.arch_hash for t in trials})
            assert all(
                t.accuracy_source == "measured" and t.latency_source == "measured" for t in trials
            )
            # The spec's batch_size reaches the loop: after the initial design (a
            # third of 20), rounds of 5 real evaluations, the last one cut short.
            per_round = Counter(t.details["round_no"] for t in trials)
            assert [per_round[r] for r in sorted(per_round)] == [6, 5, 5, 4]
            assert {t.details["source"] for t in trials if t.details["round_no"] == 0} == {
                "initial"
            }
            best = job.result["best"]
            assert best is not None and best["latency_ms"]["nb201-pixel3"] <= 20.0
            feasible = [
                t.accuracy for t in trials if t.latency_ms is not None and t.latency_ms <= 20.0
            ]
            assert best["accuracy"] == max(a for a in feasible if a is not None)
    finally:
        rt.close()


@pytest.mark.slow
def test_killed_worker_job_resumes_without_reevaluating(db_url: str, tmp_path: Path) -> None:
    rt = _open(db_url)
    try:
        job_id = _submit(rt, 30, seed=3)
        proc = subprocess.Popen(
            _hwnas_cmd("worker", "--max-jobs", "1"),
            env=_worker_env(db_url),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        n_before = 0
        while time.monotonic() < deadline:
            with rt.session() as s:
                n_before = (
                    s.scalar(select(func.count()).select_from(Trial).where(Trial.job_id == job_id))
                    or 0
                )
            if n_before >= 12:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert 12 <= n_before < 30, "the worker should die mid-search"
        with rt.session() as s:
            assert jobs.get_job(s, job_id).state == "running"  # nobody told the queue
        time.sleep(2.5)  # the dead worker's lease expires
        rerun = subprocess.run(
            _hwnas_cmd("worker", "--exit-when-idle"),
            env=_worker_env(db_url),
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        with rt.session() as s:
            job = jobs.get_job(s, job_id)
            assert job.state == "succeeded", job.error
            assert job.attempts == 2
            trials = subnets.list_trials(s, job_id=job_id)
            assert len(trials) == 30 == len({t.arch_hash for t in trials})
        study = optuna.load_study(study_name=f"hwnas-job-{job_id}", storage=db_url)
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        assert len(complete) == 30
    finally:
        rt.close()


@pytest.mark.slow
@pytest.mark.postgres
def test_several_workers_share_a_postgres_queue(postgres_url: str) -> None:
    rt = _open(postgres_url)
    try:
        ids = [_submit(rt, 10, seed=i) for i in range(3)]
        procs = [
            subprocess.Popen(
                _hwnas_cmd("worker", "--exit-when-idle", "--id", f"w{i}"),
                env=_worker_env(postgres_url),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(3)
        ]
        for p in procs:
            _, err = p.communicate(timeout=300)
            assert p.returncode == 0, err[-3000:]
        with rt.session() as s:
            done = [jobs.get_job(s, i) for i in ids]
            assert all(j.state == "succeeded" for j in done), [j.error for j in done]
            assert all(j.attempts == 1 for j in done)
            for j in done:
                assert len(subnets.list_trials(s, job_id=j.id)) == 10
    finally:
        rt.close()


@pytest.mark.slow
def test_search_on_a_pruned_space(sqlite_url: str) -> None:
    """With prune_space, the search explores only choices that do not measurably
    hurt accuracy, learnt from the measured subnets stored by an earlier search."""
    rt = _open(sqlite_url)
    try:
        first = _submit(rt, 40, seed=1)
        with rt.session() as s:
            pruned_job = searches.submit_search(
                s,
                {**SPEC, "n_evaluations": 15, "seed": 2, "prune_space": True},
                check_latency=check_budget,
            ).id
        assert Worker(rt).run(exit_when_idle=True) == 2
        with rt.session() as s:
            assert jobs.get_job(s, first).state == "succeeded"
            job = jobs.get_job(s, pruned_job)
            assert job.state == "succeeded", job.error
            assert job.result is not None
            pruning = job.result["pruning"]
            assert pruning["applied"] is True and pruning["removed"]
            allowed = pruning["choices"]
            assert pruning["kept_fraction"] < 1.0
            trials = subnets.list_trials(s, job_id=pruned_job)
            assert len(trials) == 15
            for trial in trials:
                for i, op in enumerate(trial.arch["ops"]):
                    assert op in allowed[f"edge{i}"]
    finally:
        rt.close()
