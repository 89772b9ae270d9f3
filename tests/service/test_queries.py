"""The service's best-under-budget and Pareto answers are nas's rule, applied to
the stored trials: proven equal to :mod:`nas.pareto`'s reference on random
trial sets (stored measurements override predictions, latest evaluation wins).

The service answers with indexed SQL over ``trial_latencies`` (kept in step
with trials and measurements written in either order, and through bulk
inserts); these tests hold that path to the reference, on SQLite and on
PostgreSQL (``HWNAS_TEST_POSTGRES_URL``)."""

from __future__ import annotations

import itertools
import math
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from unittest.mock import patch

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from nas.pareto import best_under_budget as reference_best
from nas.pareto import pareto_front as reference_front
from service.db import upgrade
from service.domain import devices, subnets, supernet_records
from service.runtime import Runtime
from service.settings import load_settings

ARCHS = [f"a{i}" for i in range(6)]
POSTGRES_ENV = "HWNAS_TEST_POSTGRES_URL"


@dataclass(frozen=True)
class StoredTrial:
    arch: str
    accuracy: float
    #: Latency stored on the trial for the queried device (None: none).
    own_ms: float | None
    #: True: the trial was run for the queried device (its main latency);
    #: False: the queried device is an extra device (the ``latencies`` column).
    on_device: bool
    source: str
    #: Std of a predicted latency (ignored for a measured one).
    std: float | None = None


trial_st = st.builds(
    StoredTrial,
    arch=st.sampled_from(ARCHS),
    # Few distinct values, so that ties in accuracy and latency happen often.
    accuracy=st.sampled_from([50.0, 60.0, 60.0, 70.0, 80.0]),
    own_ms=st.one_of(st.none(), st.sampled_from([1.0, 2.0, 2.0, 3.0, 5.0])),
    on_device=st.booleans(),
    source=st.sampled_from(["measured", "predicted"]),
    std=st.one_of(st.none(), st.sampled_from([0.0, 0.2, 0.5, 1.0])),
)
measurement_st = st.tuples(st.sampled_from(ARCHS), st.sampled_from([0.5, 1.5, 2.5, 4.0]))


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def rt(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Runtime]:
    """The SQL of the answers on both backends (PostgreSQL in a scratch schema)."""
    home = Path(tmp_path_factory.mktemp("queries"))
    if request.param == "sqlite":
        with Runtime.open(
            load_settings(home=home, database_url=f"sqlite:///{home / 'h.db'}")
        ) as rt_:
            yield rt_
        return
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set: no PostgreSQL server to test against")
    schema = f"hwnas_queries_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        settings = load_settings(home=home, database_url=url.render_as_string(hide_password=False))
        with Runtime.open(settings, check_schema=False) as rt_:
            upgrade(rt_.engine)
            yield rt_
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


_names = itertools.count()


def _expected_records(
    trials: list[StoredTrial], measurements: list[tuple[str, float]]
) -> list[dict[str, Any]]:
    """The documented candidate rules, written out independently of the service:
    per architecture, its latest trial's accuracy; its latency is the smallest
    stored measurement if any, else the latest trial's own latency."""
    measured: dict[str, float] = {}
    for arch, ms in measurements:
        measured[arch] = min(ms, measured.get(arch, math.inf))
    latest: dict[str, tuple[int, StoredTrial]] = {}
    for i, t in enumerate(trials):
        if t.own_ms is not None or t.arch in measured:
            latest[t.arch] = (i, t)
    records = []
    for arch, (i, t) in sorted(latest.items(), key=lambda kv: kv[1][0]):
        std = None
        if arch in measured:
            ms, is_measured = measured[arch], True
        else:
            assert t.own_ms is not None
            ms, is_measured = t.own_ms, t.source == "measured"
            std = None if is_measured else t.std
        records.append(
            {
                "arch": arch,
                "trial_number": i,
                "accuracy": t.accuracy,
                "latency_ms": {"dev": ms},
                "latency_measured": {"dev": is_measured},
                "latency_std_ms": {} if std is None else {"dev": std},
            }
        )
    return records


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    trials=st.lists(trial_st, min_size=0, max_size=10),
    measurements=st.lists(measurement_st, max_size=4),
    budget=st.sampled_from([0.4, 1.0, 1.5, 2.0, 2.5, 3.0, 10.0]),
    confidence=st.sampled_from([0.6, 0.9, 0.99]),
    measure_first=st.booleans(),
    bulk=st.booleans(),
    page=st.sampled_from([1, 2, 256]),
    probe=st.sampled_from([1, 4, 64]),
)
def test_service_answers_equal_nas_reference(
    rt: Runtime,
    trials: list[StoredTrial],
    measurements: list[tuple[str, float]],
    budget: float,
    confidence: float,
    measure_first: bool,
    bulk: bool,
    page: int,
    probe: int,
) -> None:
    n = next(_names)

    def measure(s: Any, dev: Any) -> None:
        devices.add_measurements(
            s,
            dev,
            [
                devices.MeasurementIn(
                    space_name="nb201",
                    arch={"name": arch},
                    arch_hash=arch,
                    latency_ms=ms,
                    method="test",
                )
                for arch, ms in measurements
            ],
        )

    with rt.session() as s:
        sn = supernet_records.register_supernet(
            s, f"sn{n}", space_name="nb201", space_config={}, status="ready"
        )
        dev = devices.create_device(s, f"dev{n}", kind="remote")
        other = devices.create_device(s, f"other{n}", kind="remote")
        if measure_first:
            measure(s, dev)
        stored: list[subnets.TrialIn] = []
        for t in trials:
            latency = None if t.own_ms is None else float(t.own_ms)
            predicted = t.source == "predicted"
            stored.append(
                subnets.TrialIn(
                    space_name="nb201",
                    arch={"name": t.arch},
                    arch_hash=t.arch,
                    accuracy=t.accuracy,
                    supernet_id=sn.id,
                    # On the device: its main latency; else an extra device's entry.
                    device_id=dev.id if t.on_device else other.id,
                    latency_ms=latency if t.on_device else 9.9,
                    latency_source=(t.source if t.on_device and latency else "predicted"),
                    # A predicted latency's std, where the model gave one.
                    latency_std_ms=(t.std if t.on_device and latency and predicted else None),
                    latencies=(
                        {}
                        if t.on_device or latency is None
                        else {
                            dev.name: {
                                "ms": latency,
                                "source": t.source,
                                **({"std_ms": t.std} if predicted and t.std is not None else {}),
                            }
                        }
                    ),
                )
            )
        if bulk:
            subnets.bulk_record_trials(s, stored)
        else:
            for trial in stored:
                subnets.record_trial(s, trial)
        if not measure_first:
            measure(s, dev)
        # A small probe leaves rows within the budget unread: the accuracy
        # walk and the unbounded ranges answer then.
        with patch.object(subnets, "RANGE_PROBE", probe):
            found, closest = subnets.best_under_budget(
                s, sn, dev, budget, feasibility_confidence=confidence
            )
        # Small pages make the front's walk read several pages.
        with patch.object(subnets, "FRONT_PAGE", page):
            front = subnets.pareto_front(s, sn, dev)

    expected = _expected_records(trials, measurements)
    want = reference_best(
        [{**r, "latency_ms": {dev.name: r["latency_ms"]["dev"]},
          "latency_measured": {dev.name: r["latency_measured"]["dev"]},
          "latency_std_ms": {dev.name if k == "dev" else k: v for k, v in r["latency_std_ms"].items()}}
         for r in expected],
        dev.name,
        budget,
        feasibility_confidence=confidence,
    )  # fmt: skip
    if want.best is None:
        assert found is None
    else:
        wb = cast(dict[str, Any], want.best)
        assert found is not None
        assert found.arch_hash == wb["arch"]
        assert found.accuracy == wb["accuracy"]
        assert found.latency_ms == wb["latency_ms"][dev.name]
        assert (found.latency_source == "measured") == wb["latency_measured"][dev.name]
        assert found.latency_std_ms == wb["latency_std_ms"].get(dev.name)
    assert [c.arch_hash for c in closest] == [cast(dict[str, Any], r)["arch"] for r in want.closest]

    want_front = reference_front(
        [{**r, "latency_ms": {dev.name: r["latency_ms"]["dev"]}} for r in expected], dev.name
    )
    assert [(c.arch_hash, c.latency_ms) for c in front] == [
        (r["arch"], r["latency_ms"][dev.name]) for r in cast(list[dict[str, Any]], want_front)
    ]


def test_a_rounds_trials_are_stored_together_once_each(rt: Runtime) -> None:
    """record_job_trials (the worker's per-round write): architectures the job
    stored already, and repeats within the call, are skipped; the index rows
    carry the job's owner, a stored measurement and the predicted std."""
    from sqlalchemy import select

    from service.db import TrialLatency
    from service.domain import jobs

    n = next(_names)
    with rt.session() as s:
        sn = supernet_records.register_supernet(
            s, f"sn{n}", space_name="nb201", space_config={}, status="ready"
        )
        dev = devices.create_device(s, f"dev{n}", kind="remote")
        devices.create_device(s, f"other{n}", kind="remote")
        job = jobs.submit_job(s, {"supernet": sn.name, "device": dev.name}, owner="alice")

        def trial(arch: str, ms: float) -> subnets.TrialIn:
            return subnets.TrialIn(
                space_name="nb201",
                arch={"name": arch},
                arch_hash=arch,
                accuracy=70.0,
                supernet_id=sn.id,
                device_id=dev.id,
                job_id=job.id,
                latency_ms=ms,
                latency_source="predicted",
                latency_std_ms=0.5,
                latencies={f"other{n}": {"ms": 2 * ms, "source": "predicted", "std_ms": 0.1}},
            )

        devices.add_measurements(
            s,
            dev,
            [devices.MeasurementIn("nb201", {"name": "b"}, "b", latency_ms=1.5, method="test")],
        )
        context = subnets.JobTrials(job.id, "alice", "nb201", dev.name)
        assert subnets.record_job_trials(s, context, [trial("a", 3.0)]) == 1
        stored = [trial("a", 9.0), trial("b", 4.0), trial("b", 5.0), trial("c", 6.0)]
        assert subnets.record_job_trials(s, context, stored) == 2
        assert subnets.record_job_trials(s, context, stored) == 0
        rows = {
            (r.arch_hash, r.device_name): r
            for r in s.scalars(select(TrialLatency).where(TrialLatency.supernet_id == sn.id))
        }
        with pytest.raises(ValueError, match="must belong to job"):
            subnets.record_job_trials(s, context, [subnets.TrialIn("nb201", {}, "z", 50.0)])
    assert sorted(rows) == [(h, d) for h in "abc" for d in (dev.name, f"other{n}")]
    assert rows[("a", dev.name)].latency_ms == 3.0  # the first report stands
    assert (rows[("b", dev.name)].latency_ms, rows[("b", dev.name)].source) == (1.5, "measured")
    assert rows[("b", dev.name)].own_ms == 4.0  # the first of the repeats
    assert rows[("c", dev.name)].own_std_ms == 0.5
    assert rows[("c", f"other{n}")].own_std_ms == 0.1
    assert {r.owner for r in rows.values()} == {"alice"}
