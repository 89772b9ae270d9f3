"""Schema migrations on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from service.db import (
    VERSION_TABLE,
    Base,
    SchemaError,
    downgrade,
    ensure_schema,
    head_revision,
    make_engine,
    schema_status,
    upgrade,
)
from service.runtime import Runtime
from service.settings import load_settings

OUR_TABLES = set(Base.metadata.tables)


def _diff(engine) -> list:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "version_table": VERSION_TABLE,
                "compare_type": True,
                "include_object": lambda obj, name, type_, reflected, other: (
                    type_ != "table" or name in OUR_TABLES
                ),
            },
        )
        return compare_metadata(context, Base.metadata)


def test_upgrade_downgrade_upgrade_and_models_match(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert schema_status(engine).state == "fresh"
        upgrade(engine)
        assert set(inspect(engine).get_table_names()) >= OUR_TABLES
        assert schema_status(engine).current == head_revision()
        assert _diff(engine) == []
        downgrade(engine, "base")
        assert not (OUR_TABLES & set(inspect(engine).get_table_names()))
        assert schema_status(engine).state == "fresh"
        upgrade(engine)
        assert _diff(engine) == []
        assert schema_status(engine).state == "current"
    finally:
        engine.dispose()


def test_shares_a_database_with_an_optuna_study(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        storage = optuna.storages.RDBStorage(db_url)
        study = optuna.create_study(study_name="shared", storage=storage)
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
        tables = set(inspect(engine).get_table_names())
        assert {"alembic_version", VERSION_TABLE, "trials", "nas_trials"} <= tables
        # Optuna's own tables neither confuse our version check nor our models.
        assert schema_status(engine).state == "current"
        assert _diff(engine) == []
        storage.engine.dispose()
    finally:
        engine.dispose()


def test_fresh_embedded_database_is_created_automatically(tmp_path) -> None:
    settings = load_settings(home=tmp_path / "h")
    with Runtime.open(settings) as rt:
        assert rt.schema is not None and rt.schema.state == "current"
    assert (tmp_path / "h" / "hwnas.db").exists()


@pytest.mark.postgres
def test_fresh_server_database_is_not_migrated_implicitly(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    try:
        with pytest.raises(SchemaError, match="run `hwnas db upgrade`"):
            ensure_schema(engine, auto_create=False)
        assert schema_status(engine).state == "fresh"
    finally:
        engine.dispose()


def test_behind_and_ahead_databases_say_what_to_run(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        upgrade(engine)
        with engine.begin() as conn:
            conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = 'f00dfeed'"))
        with pytest.raises(SchemaError, match="upgrade hwnas"):
            ensure_schema(engine, auto_create=True)
        assert schema_status(engine).state == "ahead"
    finally:
        engine.dispose()


def test_behind_database(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine(sqlite_url)
    try:
        upgrade(engine)
        current = head_revision()
        # Pretend this hwnas ships a newer revision than the database has.
        monkeypatch.setattr("service.db.migrate.head_revision", lambda: "9999")
        with pytest.raises(
            SchemaError, match=rf"revision {current}, this hwnas needs 9999: run `hwnas db upgrade`"
        ):
            ensure_schema(engine, auto_create=True)
    finally:
        engine.dispose()


def test_unversioned_tables_are_refused(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        Base.metadata.create_all(engine)
        with pytest.raises(SchemaError, match="no version table"):
            ensure_schema(engine, auto_create=True)
    finally:
        engine.dispose()


def test_owners_migration_keeps_rows_and_marks_bundled_ones(db_url: str) -> None:
    """Rows from before 0002 belong to `local`; the bundled table devices and
    spaces become read-only; downgrading drops the columns again."""
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0001")
        now = "2026-01-01 00:00:00+00:00"
        with engine.begin() as conn:
            for name, kind in (("nb201-pixel3", "table"), ("phone", "remote")):
                conn.execute(
                    text(
                        "INSERT INTO devices (name, kind, description, batch_size, properties,"
                        " created_at, updated_at) VALUES (:n, :k, '', 1, '{}', :t, :t)"
                    ),
                    {"n": name, "k": kind, "t": now},
                )
            conn.execute(
                text(
                    "INSERT INTO search_jobs (name, spec, state, progress, n_evaluations, owner,"
                    " attempts, created_at, updated_at) VALUES"
                    " ('j', '{}', 'queued', 0, 0, '', 0, :t, :t)"
                ),
                {"t": now},
            )
        upgrade(engine)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT name, owner, bundled FROM devices ORDER BY name"))
            assert [(n, o, bool(b)) for n, o, b in rows] == [
                ("nb201-pixel3", "local", True),
                ("phone", "local", False),
            ]
            assert conn.execute(text("SELECT owner FROM search_jobs")).scalar() == "local"
        assert _diff(engine) == []
        downgrade(engine, "0001")
        assert "owner" not in {c["name"] for c in inspect(engine).get_columns("devices")}
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM devices")).scalar() == 2
    finally:
        engine.dispose()


def test_migrations_keep_every_dependent_row(db_url: str) -> None:
    """Rebuilding a parent table (SQLite batch mode) must not cascade: trials,
    measurements and predictors of a supernet and a device survive every
    upgrade and downgrade."""
    engine = make_engine(db_url)
    now = "2026-01-01 00:00:00+00:00"
    counted = ("nas_trials", "latency_measurements", "predictor_models")

    def counts() -> dict[str, int]:
        with engine.connect() as conn:
            return {
                t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one())
                for t in counted
            }

    try:
        upgrade(engine, "0001")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO supernets (id, name, space_name, space_config, dataset, status,"
                    " metrics, description, created_at, updated_at)"
                    " VALUES (1, 's', 'nb201', '{}', '{}', 'ready', '{}', '', :t, :t)"
                ),
                {"t": now},
            )
            conn.execute(
                text(
                    "INSERT INTO devices (id, name, kind, description, batch_size, properties,"
                    " created_at, updated_at) VALUES (1, 'phone', 'remote', '', 1, '{}', :t, :t)"
                ),
                {"t": now},
            )
            for i in range(3):
                conn.execute(
                    text(
                        "INSERT INTO nas_trials (supernet_id, device_id, space_name, arch,"
                        " arch_hash, accuracy, accuracy_source, latencies, details, created_at,"
                        " updated_at) VALUES (1, 1, 'nb201', '{}', :h, 90.0, 'measured', '{}',"
                        " '{}', :t, :t)"
                    ),
                    {"h": f"h{i}", "t": now},
                )
            conn.execute(
                text(
                    "INSERT INTO latency_measurements (device_id, space_name, arch, arch_hash,"
                    " latency_ms, method, details, is_reference, created_at)"
                    " VALUES (1, 'nb201', '{}', 'h0', 1.5, 'test', '{}', :f, :t)"
                ),
                {"t": now, "f": False},
            )
            conn.execute(
                text(
                    "INSERT INTO predictor_models (kind, scope, space_name, device_id, version,"
                    " metrics, n_train, path, created_at) VALUES ('latency', 'device:1', 'nb201', 1, 1,"
                    " '{}', 10, '/models/m.json', :t)"
                ),
                {"t": now},
            )
        before = counts()
        assert before == {"nas_trials": 3, "latency_measurements": 1, "predictor_models": 1}
        upgrade(engine)
        assert counts() == before
        downgrade(engine, "0001")
        assert counts() == before
    finally:
        engine.dispose()


def _insert_supernet(conn: Any, now: Any) -> None:
    """A bare supernet row ``sn`` of the nb201 space, as a migration test stores it."""
    from typing import cast

    from sqlalchemy import Table, insert

    from service.db import Supernet

    conn.execute(
        insert(cast(Table, Supernet.__table__)),
        {"name": "sn", "space_name": "nb201", "space_config": {}, "dataset": {},
         "status": "ready", "metrics": {}, "description": "", "owner": "local",
         "bundled": False, "created_at": now, "updated_at": now},
    )  # fmt: skip


def _insert_devices(conn: Any, names: Sequence[str], now: Any) -> None:
    """Bare remote device rows, one per name, owned by ``local``."""
    from typing import cast

    from sqlalchemy import Table, insert

    from service.db import Device

    for name in names:
        conn.execute(
            insert(cast(Table, Device.__table__)),
            {"name": name, "kind": "remote", "description": "", "batch_size": 1,
             "properties": {}, "owner": "local", "bundled": False,
             "created_at": now, "updated_at": now},
        )  # fmt: skip


def test_trial_latencies_migration_fills_rows_from_stored_trials(db_url: str) -> None:
    """0003 derives one row per (trial, device latency) from the trials stored
    before it: own latency, extra devices' entries, measurements winning."""
    from typing import cast

    from sqlalchemy import Table, insert

    from service.db import LatencyMeasurement, Trial, utcnow

    engine = make_engine(db_url)
    try:
        upgrade(engine, "0002")
        now = utcnow()
        with engine.begin() as conn:
            _insert_supernet(conn, now)
            _insert_devices(conn, ("d1", "d2"), now)
            sn_id = conn.execute(text("SELECT id FROM supernets")).scalar()
            d1 = conn.execute(text("SELECT id FROM devices WHERE name = 'd1'")).scalar()
            d2 = conn.execute(text("SELECT id FROM devices WHERE name = 'd2'")).scalar()
            conn.execute(
                insert(cast(Table, Trial.__table__)),
                {"supernet_id": sn_id, "device_id": d1, "space_name": "nb201", "arch": {},
                 "arch_hash": "a", "accuracy": 90.0, "accuracy_source": "measured",
                 "latency_ms": 3.0, "latency_source": "predicted",
                 "latencies": {"d2": {"ms": 7.0, "source": "predicted"}}, "details": {},
                 "created_at": now, "updated_at": now},
            )  # fmt: skip
            conn.execute(
                insert(cast(Table, LatencyMeasurement.__table__)),
                {"device_id": d2, "space_name": "nb201", "arch": {}, "arch_hash": "a",
                 "latency_ms": 5.0, "method": "test", "details": {}, "is_reference": False,
                 "created_at": now},
            )  # fmt: skip
        upgrade(engine)
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT device_name, latency_ms, source, own_ms, is_primary "
                    "FROM trial_latencies ORDER BY device_name"
                )
            ).all()
        assert [(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows] == [
            ("d1", 3.0, "predicted", 3.0, True),
            ("d2", 5.0, "measured", 7.0, False),
        ]
        assert _diff(engine) == []
    finally:
        engine.dispose()


def test_trial_latency_std_migration_fills_the_std_of_predictions(db_url: str) -> None:
    """0006 copies each predicted latency's std into the query index: the main
    device's from ``nas_trials.latency_std_ms``, the others' from ``latencies``;
    measured entries and entries without a std get none."""
    from typing import cast

    from sqlalchemy import Table, insert

    from service.db import Trial, utcnow

    engine = make_engine(db_url)
    try:
        upgrade(engine, "0005")
        now = utcnow()
        with engine.begin() as conn:
            _insert_supernet(conn, now)
            _insert_devices(conn, ("d1", "d2", "d3", "d4"), now)
            sn_id = conn.execute(text("SELECT id FROM supernets")).scalar()
            d1 = conn.execute(text("SELECT id FROM devices WHERE name = 'd1'")).scalar()
            latencies = {
                "d2": {"ms": 7.0, "source": "predicted", "std_ms": 1.5},
                "d3": {"ms": 2.0, "source": "measured"},
                "d4": {"ms": 6.0, "source": "predicted"},
            }
            conn.execute(
                insert(cast(Table, Trial.__table__)),
                {"supernet_id": sn_id, "device_id": d1, "space_name": "nb201", "arch": {},
                 "arch_hash": "a", "accuracy": 90.0, "accuracy_source": "measured",
                 "latency_ms": 3.0, "latency_source": "predicted", "latency_std_ms": 0.5,
                 "latencies": latencies, "details": {}, "created_at": now, "updated_at": now},
            )  # fmt: skip
            trial_id = conn.execute(text("SELECT id FROM nas_trials")).scalar()
            # The index rows as the service wrote them before 0006 (d2 overridden
            # by a stored measurement).
            for device, ms, source, own_ms, own_source, primary in (
                ("d1", 3.0, "predicted", 3.0, "predicted", True),
                ("d2", 5.0, "measured", 7.0, "predicted", False),
                ("d3", 2.0, "measured", 2.0, "measured", False),
                ("d4", 6.0, "predicted", 6.0, "predicted", False),
            ):
                conn.execute(
                    text(
                        "INSERT INTO trial_latencies (trial_id, device_name, supernet_id,"
                        " arch_hash, accuracy, latency_ms, source, own_ms, own_source,"
                        " is_primary, owner) VALUES (:t, :d, :s, 'a', 90.0, :ms, :src, :own,"
                        " :own_src, :p, NULL)"
                    ),
                    {"t": trial_id, "d": device, "s": sn_id, "ms": ms, "src": source,
                     "own": own_ms, "own_src": own_source, "p": primary},
                )  # fmt: skip
        upgrade(engine)
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT device_name, own_std_ms FROM trial_latencies ORDER BY device_name")
            ).all()
            assert conn.execute(text("SELECT count(*) FROM nas_trials")).scalar() == 1
        assert [tuple(r) for r in rows] == [("d1", 0.5), ("d2", 1.5), ("d3", None), ("d4", None)]
        assert _diff(engine) == []
        downgrade(engine, "0005")
        assert "own_std_ms" not in {
            c["name"] for c in inspect(engine).get_columns("trial_latencies")
        }
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM trial_latencies")).scalar() == 4
    finally:
        engine.dispose()


def _v1_payload(blob: bytes) -> bytes:
    """A device model as hwnas saved it before payload version 2."""
    import json

    payload = json.loads(blob)
    for key in ("posterior_cov", "noise", "cov_scale", "calibration"):
        del payload[key]
    payload["format_version"] = 1
    return json.dumps(payload).encode()


def test_readapt_migration_gives_old_device_models_uncertainty(db_url: str) -> None:
    """0007 re-adapts a device whose newest model is a version-1 payload from its
    stored measurements (an older reference set's included); a v2 model, a
    device without measurements and every other row stay; downgrade removes
    only what it added."""
    from typing import cast

    import numpy as np
    from sqlalchemy import Table, insert

    from predictors.latency import DeviceLatencyPredictor, adapt_device, reference_archs
    from service.db import LatencyMeasurement, PredictorModel, utcnow
    from supernets import tables
    from supernets.spaces import NB201Space

    space = NB201Space()
    latency = tables.nb201_latency().latency["fpga"]
    rng = np.random.default_rng(0)
    # "Older reference set": ten architectures the current predictor does not name.
    old_refs = [space.from_index(int(i)).to_dict() for i in rng.choice(15625, 10, replace=False)]
    extras = [space.from_index(int(i)).to_dict() for i in rng.choice(15625, 4, replace=False)]
    ms = lambda c: float(latency[space.index(space.validate(c))])  # noqa: E731
    current = adapt_device("nb201", [ms(c) for c in reference_archs("nb201")]).model
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0005")
        now = utcnow()
        with engine.begin() as conn:
            _insert_devices(conn, ("old", "new", "empty"), now)
            ids: dict[str, int] = {
                str(n): int(i) for n, i in conn.execute(text("SELECT name, id FROM devices"))
            }
            for device, archs in (("old", old_refs + extras), ("new", old_refs)):
                for i, arch in enumerate(archs):
                    conn.execute(
                        insert(cast(Table, LatencyMeasurement.__table__)),
                        {"device_id": ids[device], "space_name": "nb201", "arch": arch,
                         "arch_hash": space.arch_hash(space.validate(arch)),
                         "latency_ms": ms(arch), "method": "submitted", "details": {},
                         "is_reference": i < 10, "created_at": now},
                    )  # fmt: skip
            for device, blob in (
                ("old", _v1_payload(current.to_bytes())),
                ("new", current.to_bytes()),
                ("empty", _v1_payload(current.to_bytes())),
            ):
                conn.execute(
                    insert(cast(Table, PredictorModel.__table__)),
                    {"kind": "latency", "scope": f"device:{ids[device]}", "space_name": "nb201",
                     "device_id": ids[device], "version": 1, "blob": blob,
                     "metrics": {"n_references": 10.0}, "n_train": 10, "created_at": now},
                )  # fmt: skip

        def models() -> list[tuple[int, int, bytes, dict]]:
            import json

            with engine.connect() as conn:
                rows = conn.execute(
                    text(
                        "SELECT device_id, version, blob, metrics FROM predictor_models "
                        "ORDER BY device_id, version"
                    )
                ).all()
            return [
                (r[0], r[1], bytes(r[2]), json.loads(r[3]) if isinstance(r[3], str) else r[3])
                for r in rows
            ]

        before = models()
        upgrade(engine)
        after = models()
        had = {(d, v) for d, v, _, _ in before}
        assert [r for r in after if r[:2] in had] == before  # nothing changed or lost
        added = [r for r in after if r[:2] not in had]
        assert [(d, v) for d, v, _, _ in added] == [(ids["old"], 2)]
        model = DeviceLatencyPredictor.from_bytes(added[0][2])
        assert model.has_uncertainty and model.n_measurements == 14 and model.device == "old"
        X = space.encode_many([space.from_index(i) for i in range(0, 15625, 500)])
        mean, std = model.predict_with_uncertainty(X)
        assert (mean > 0).all() and (std > 0).all()
        truth = latency[list(range(0, 15625, 500))]
        assert np.corrcoef(mean, truth)[0, 1] > 0.9
        metrics = added[0][3]
        assert metrics["n_references"] == 10.0 and metrics["n_measured"] == 14.0
        assert metrics["readapted_by_migration"] == {"revision": "0007", "from_version": 1}
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM latency_measurements")).scalar() == 24
        assert _diff(engine) == []
        downgrade(engine, "0005")
        assert models() == before
        upgrade(engine)
        assert len(models()) == len(before) + 1
    finally:
        engine.dispose()
