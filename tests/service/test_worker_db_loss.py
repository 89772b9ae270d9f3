"""Workers survive the database: every PostgreSQL connection of the
installation is terminated 20 times while 6 search jobs run; every job still
succeeds with exactly its trials (no duplicate, none missing) and no Optuna
trial is left RUNNING."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import optuna
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from service.db.transient import retrying
from service.domain import jobs, searches, subnets
from service.orchestration.benchmarks import register_benchmark
from service.orchestration.device_latency import check_budget
from service.orchestration.worker import Worker
from service.runtime import Runtime
from service.settings import load_settings

SPEC = {"supernet": "nb201", "device": "nb201-pixel3", "latency_budget_ms": 20.0, "batch_size": 5}
N_JOBS, N_EVALUATIONS, N_DROPS = 6, 20, 20


@pytest.fixture
def tagged_url(postgres_url: str) -> Iterator[tuple[str, str]]:
    """The test database's URL with an application_name of its own, so that
    only this test's connections are terminated (others share the server)."""
    tag = f"hwnas_dbloss_{uuid.uuid4().hex[:8]}"
    yield (
        make_url(postgres_url)
        .update_query_dict({"application_name": tag})
        .render_as_string(hide_password=False),
        tag,
    )


@pytest.mark.slow
@pytest.mark.postgres
def test_jobs_survive_terminated_connections(
    tagged_url: tuple[str, str], postgres_url: str
) -> None:
    url, tag = tagged_url
    rt = Runtime.open(
        load_settings(
            database_url=url, worker_heartbeat_s=0.2, worker_poll_s=0.1, worker_lease_s=30
        ),
        check_schema=False,
    )
    from service.db import upgrade

    upgrade(rt.engine)
    with rt.session() as s:
        register_benchmark(s)
        ids = [
            searches.submit_search(
                s,
                {**SPEC, "n_evaluations": N_EVALUATIONS, "seed": i},
                check_latency=check_budget,
            ).id
            for i in range(N_JOBS)
        ]
    # Optuna's tables made up front: two workers creating them at once on a
    # fresh database is another race (nas.study.make_storage), not this test's.
    optuna.storages.RDBStorage(url).engine.dispose()
    killer = create_engine(postgres_url)
    drops: list[int] = []
    done = threading.Event()

    def terminate() -> None:
        while len(drops) < N_DROPS and not done.is_set():
            time.sleep(0.4)
            with killer.begin() as conn:
                n = conn.execute(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = :tag AND pid <> pg_backend_pid()"
                    ),
                    {"tag": tag},
                ).scalar()
            drops.append(int(n or 0))

    chaos = threading.Thread(target=terminate, daemon=True)
    chaos.start()
    workers = [Worker(rt) for _ in range(2)]
    threads = [
        threading.Thread(target=w.run, kwargs={"exit_when_idle": True}, daemon=True)
        for w in workers
    ]
    try:
        for t in threads:
            t.start()
        # Keep the workers busy until every drop happened: a worker that found
        # the queue empty is started again while jobs are still pending.
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:

            def read_states() -> list[str]:
                with rt.read_session() as s:
                    return [jobs.get_job(s, i).state for i in ids]

            states = retrying(read_states, what="reading job states")
            if all(state in ("succeeded", "failed") for state in states):
                break
            for i, t in enumerate(threads):
                if not t.is_alive():
                    threads[i] = threading.Thread(
                        target=workers[i].run, kwargs={"exit_when_idle": True}, daemon=True
                    )
                    threads[i].start()
            time.sleep(0.2)
    finally:
        done.set()
        for w in workers:
            w.stop_event.set()
        for t in threads:
            t.join(timeout=60)
        chaos.join(timeout=30)
        killer.dispose()
    assert sum(1 for n in drops if n > 0) >= 5, f"connections were hardly dropped: {drops}"
    rt.engine.dispose()  # connections the last drops killed
    storage = optuna.storages.RDBStorage(url)
    try:
        with rt.read_session() as s:
            for job_id in ids:
                job = jobs.get_job(s, job_id)
                assert job.state == "succeeded", (job_id, job.state, job.error)
                trials = subnets.list_trials(s, job_id=job_id)
                hashes = [t.arch_hash for t in trials]
                assert len(hashes) == N_EVALUATIONS == len(set(hashes)), job_id
                study = optuna.load_study(study_name=job.study_name, storage=storage)
                trial_states = [t.state for t in study.get_trials(deepcopy=False)]
                assert optuna.trial.TrialState.RUNNING not in trial_states, job_id
    finally:
        storage.engine.dispose()
        rt.close()
