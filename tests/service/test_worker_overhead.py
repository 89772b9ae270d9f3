"""A worker's bookkeeping per real evaluation stays small: the SQL statements a
search job issues (the service's tables, progress, and Optuna's RDB storage),
and no re-featurising of the whole space for every job."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from nas.candidates import Featurizer
from service.db import upgrade
from service.domain import jobs, searches
from service.orchestration.benchmarks import register_benchmark
from service.orchestration.device_latency import check_budget
from service.orchestration.worker import Worker
from service.runtime import Runtime
from service.settings import load_settings

N_EVALUATIONS = 30
#: Statements per real evaluation, everything counted (the job's rows, its
#: progress, Optuna's trials), on SQLite. It was 93 before the study was read
#: once per job, trials written whole and the job's rows a round at a time.
MAX_STATEMENTS_PER_EVALUATION = 40


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    settings = load_settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'h.db'}")
    with Runtime.open(settings, check_schema=False) as handle:
        upgrade(handle.engine)
        yield handle


def _submit(rt: Runtime, seed: int) -> int:
    spec = {
        "supernet": "nb201",
        "device": "nb201-pixel3",
        "latency_budget_ms": 20.0,
        "batch_size": 5,
        "n_evaluations": N_EVALUATIONS,
        "seed": seed,
    }
    with rt.session() as s:
        register_benchmark(s)
        return searches.submit_search(s, spec, check_latency=check_budget).id


@pytest.mark.slow  # two 30-evaluation searches, ~30 s
def test_statements_per_evaluation_and_featurisation_stay_bounded(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = Worker(rt)
    _submit(rt, seed=0)
    assert worker.run(exit_when_idle=True) == 1  # first job: schema, caches filled
    assert len(worker.cache.features) >= 15_625  # every NB201 cell, kept

    computed: list[int] = []
    real_compute = Featurizer._compute

    def counting(self: Featurizer, archs: list[Any], hashes: list[str]) -> None:
        computed.append(len(archs))
        real_compute(self, archs, hashes)

    monkeypatch.setattr(Featurizer, "_compute", counting)
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        statements.append(statement)

    job_id = _submit(rt, seed=1)
    event.listen(Engine, "before_cursor_execute", count)
    try:
        assert worker.run(exit_when_idle=True) == 1
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    with rt.session() as s:
        job = jobs.get_job(s, job_id)
        assert job.state == "succeeded", job.error
        assert job.n_evaluations == N_EVALUATIONS
    per_evaluation = len(statements) / N_EVALUATIONS
    assert per_evaluation <= MAX_STATEMENTS_PER_EVALUATION, (
        f"{per_evaluation:.1f} statements per evaluation"
    )
    # The second job featurised nothing of the space again.
    assert sum(computed) == 0
