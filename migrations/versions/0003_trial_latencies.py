"""trial_latencies: one row per (trial, device latency), indexed for the
best-subnet query; filled from the stored trials and measurements.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trial_latencies",
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("device_name", sa.String(length=128), nullable=False),
        sa.Column("supernet_id", sa.Integer(), nullable=False),
        sa.Column("arch_hash", sa.String(length=64), nullable=False),
        sa.Column("accuracy", sa.Float(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("own_ms", sa.Float(), nullable=True),
        sa.Column("own_source", sa.String(length=16), nullable=True),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=True),
        sa.CheckConstraint(
            "source IN ('measured', 'predicted')", name=op.f("ck_trial_latencies_source")
        ),
        sa.ForeignKeyConstraint(
            ["supernet_id"],
            ["supernets.id"],
            name=op.f("fk_trial_latencies_supernet_id_supernets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["trial_id"],
            ["nas_trials.id"],
            name=op.f("fk_trial_latencies_trial_id_nas_trials"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("trial_id", "device_name", name=op.f("pk_trial_latencies")),
    )
    with op.batch_alter_table("trial_latencies", schema=None) as batch_op:
        for columns in (
            ["supernet_id", "device_name", "accuracy", "latency_ms"],
            ["supernet_id", "device_name", "latency_ms", "accuracy"],
            ["supernet_id", "device_name", "arch_hash", "trial_id"],
        ):
            batch_op.create_index(
                batch_op.f("ix_trial_latencies_" + "_".join(columns)), columns, unique=False
            )
    _backfill()


def _backfill() -> None:
    """Rows for the trials stored before this revision (same rules as
    ``service.domain.subnets.index_trial``)."""
    conn = op.get_bind()
    measured: dict[tuple[str, str, str], float] = {}
    for space, arch_hash, device, ms in conn.execute(
        sa.text(
            "SELECT m.space_name, m.arch_hash, d.name, m.latency_ms "
            "FROM latency_measurements m JOIN devices d ON d.id = m.device_id"
        )
    ):
        key = (space, arch_hash, device)
        measured[key] = min(ms, measured.get(key, float("inf")))
    by_arch: dict[tuple[str, str], list[str]] = {}
    for space, arch_hash, device in measured:
        by_arch.setdefault((space, arch_hash), []).append(device)
    device_names: dict[int, str] = {
        int(i): str(n) for i, n in conn.execute(sa.text("SELECT id, name FROM devices"))
    }
    trials = conn.execute(
        sa.text(
            "SELECT t.id, t.supernet_id, s.space_name, t.arch_hash, t.accuracy, t.device_id,"
            " t.latency_ms, t.latency_source, t.latencies, j.owner "
            "FROM nas_trials t JOIN supernets s ON s.id = t.supernet_id "
            "LEFT JOIN search_jobs j ON j.id = t.job_id "
            "WHERE t.accuracy IS NOT NULL AND t.accuracy_source = 'measured'"
        )
    )
    rows: list[dict[str, Any]] = []
    for tid, sid, space, arch_hash, acc, dev_id, ms, src, latencies, owner in trials:
        own: dict[str, tuple[float, str, bool]] = {}
        if isinstance(latencies, str):
            latencies = json.loads(latencies)
        for name, entry in (latencies or {}).items():
            own[name] = (float(entry["ms"]), str(entry.get("source", "predicted")), False)
        if dev_id is not None and ms is not None and dev_id in device_names:
            own[device_names[dev_id]] = (float(ms), src or "predicted", True)
        for name in by_arch.get((space, arch_hash), []):
            own.setdefault(name, (None, None, False))  # type: ignore[arg-type]
        for name, (own_ms, own_source, primary) in own.items():
            m = measured.get((space, arch_hash, name))
            rows.append(
                {
                    "trial_id": tid,
                    "device_name": name,
                    "supernet_id": sid,
                    "arch_hash": arch_hash,
                    "accuracy": acc,
                    "latency_ms": m if m is not None else own_ms,
                    "source": "measured" if m is not None else own_source,
                    "own_ms": own_ms,
                    "own_source": own_source,
                    "is_primary": primary,
                    "owner": owner,
                }
            )
    if rows:
        table = sa.table(
            "trial_latencies",
            *(sa.column(c) for c in rows[0]),
        )
        op.bulk_insert(table, rows)


def downgrade() -> None:
    op.drop_table("trial_latencies")
