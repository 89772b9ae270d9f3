"""One accuracy scale in the service: every path that stores an accuracy
stores percent, and migration 0004 converts what older versions stored as
fractions -- chosen by who wrote the row, never by its value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from service.db import Trial, downgrade, make_engine, upgrade
from service.domain import subnets, supernet_records
from service.runtime import Runtime
from service.settings import load_settings


def _insert_old_rows(engine) -> None:
    """What hwnas stored before 0004: fractions from subnet evaluation and the
    training checks, percent from search jobs and tables."""
    now = "2026-11-30 00:00:00"
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO supernets (id, name, space_name, space_config, dataset, status,"
                " metrics, description, created_at, updated_at) VALUES (1, 'old', 'ofa-mbv3-tiny',"
                " '{}', '{}', 'ready', :m, '', :t, :t)"
            ),
            {
                "m": json.dumps(
                    {"phases": [{"name": "full", "accuracy_max_r32": 0.875, "seconds": 3.0}]}
                ),
                "t": now,
            },
        )
        c.execute(
            text(
                "INSERT INTO search_jobs (id, name, supernet_id, spec, state, progress,"
                " n_evaluations, owner, attempts, created_at, updated_at)"
                " VALUES (1, 'j', 1, '{}', 'succeeded', 1.0, 1, '', 1, :t, :t)"
            ),
            {"t": now},
        )
        rows = [
            # (id, job_id, accuracy, details): evaluation rows have no job and n_calibration.
            (1, None, 0.33, {"purpose": "evaluation", "accuracy": 0.33, "n_calibration": 500}),
            (
                2,
                None,
                0.9,
                {"purpose": "predictor-training", "accuracy": 0.9, "n_calibration": 2000},
            ),
            # A search trial in percent -- even one below 1 % -- is left alone.
            (3, 1, 0.5, {"source": "initial"}),
            (4, 1, 34.2, {"source": "model"}),
        ]
        for row_id, job_id, acc, details in rows:
            c.execute(
                text(
                    "INSERT INTO nas_trials (id, job_id, supernet_id, space_name, arch, arch_hash,"
                    " accuracy, accuracy_source, latencies, details, created_at, updated_at)"
                    " VALUES (:id, :job, 1, 'ofa-mbv3-tiny', '{}', :h, :acc, 'measured', '{}', :d,"
                    " :t, :t)"
                ),
                {"id": row_id, "job": job_id, "h": f"h{row_id}", "acc": acc,
                 "d": json.dumps(details), "t": now},
            )  # fmt: skip


def _state(engine) -> tuple[dict[int, float], dict[int, dict], dict]:
    with engine.connect() as c:
        trials = c.execute(text("SELECT id, accuracy, details FROM nas_trials ORDER BY id")).all()
        metrics = c.execute(text("SELECT metrics FROM supernets WHERE id = 1")).scalar_one()

    def js(v):
        return json.loads(v) if isinstance(v, str) else v

    return (
        {i: a for i, a, _ in trials},
        {i: js(d) for i, _, d in trials},
        js(metrics),
    )


def test_migration_converts_by_provenance_and_back(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0001")
        _insert_old_rows(engine)
        upgrade(engine, "0004")
        acc, details, metrics = _state(engine)
        assert acc[1] == pytest.approx(33.0) and acc[2] == pytest.approx(90.0)
        assert details[1]["accuracy"] == pytest.approx(33.0)
        assert details[1]["accuracy_unit"] == "percent"
        assert acc[3] == pytest.approx(0.5) and acc[4] == pytest.approx(34.2)  # job rows untouched
        assert "accuracy_unit" not in details[3]
        assert metrics["phases"][0]["accuracy_max_r32"] == pytest.approx(87.5)
        assert metrics["phases"][0]["seconds"] == 3.0 and metrics["accuracy_unit"] == "percent"
        downgrade(engine, "0001")
        acc, details, metrics = _state(engine)
        assert acc[1] == pytest.approx(0.33) and acc[4] == pytest.approx(34.2)
        assert metrics["phases"][0]["accuracy_max_r32"] == pytest.approx(0.875)
        upgrade(engine)  # and forward again: converted once, not twice
        acc, _, _ = _state(engine)
        assert acc[1] == pytest.approx(33.0)
    finally:
        engine.dispose()


def test_a_stored_accuracy_must_be_percent_and_is_stamped(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"percentage in \[0, 100\]"):
        subnets.TrialIn(space_name="nb201", arch={}, arch_hash="x", accuracy=150.0)
    with Runtime.open(load_settings(home=tmp_path / "h")) as rt, rt.session() as s:
        row = supernet_records.register_supernet(
            s, "t", space_name="ofa-mbv3-tiny", space_config={}
        )
        trial = subnets.record_trial(
            s,
            subnets.TrialIn(
                space_name="ofa-mbv3-tiny", arch={}, arch_hash="a", accuracy=42.0,
                supernet_id=row.id, details={"purpose": "x"},
            ),
        )  # fmt: skip
        assert trial.details == {"purpose": "x", "accuracy_unit": "percent"}
        # The bulk path stores the same columns, stamp included.
        (bulk_id,) = subnets.bulk_record_trials(
            s,
            [
                subnets.TrialIn(
                    space_name="ofa-mbv3-tiny", arch={}, arch_hash="b", accuracy=43.0,
                    supernet_id=row.id, details={"purpose": "y"},
                )
            ],
        )  # fmt: skip
        stored = s.get(Trial, bulk_id)
        assert stored is not None
        assert stored.details == {"purpose": "y", "accuracy_unit": "percent"}


@pytest.mark.slow
def test_the_shipped_supernet_is_registered_once_with_percent_metrics(tmp_path: Path) -> None:
    from service.orchestration.quickstart import SHIPPED
    from service.orchestration.training import register_pretrained
    from supernets.pretrained import pretrained_supernet_path

    with Runtime.open(load_settings(home=tmp_path / "h")) as rt:
        row = register_pretrained(rt, "shipped", SHIPPED)
        again = register_pretrained(rt, "shipped", SHIPPED)
        assert again.id == row.id and row.status == "ready"
        assert row.checkpoint_path == str(pretrained_supernet_path(SHIPPED).resolve())
        assert row.dataset["kind"] == "digits-hard"
        assert row.metrics["accuracy_unit"] == "percent"
        for phase in row.metrics["phases"]:
            for key, value in phase.items():
                if key.startswith("accuracy_"):
                    assert 1.0 < value <= 100.0  # percent, and above chance's 10 % scale
