"""trial_latencies.own_std_ms: the std of each predicted latency in the query
index, so that best-under-budget (a predicted latency meets a budget only at
its one-sided upper bound) is answered from the index alone; the query indexes
become covering (they carry every column a candidate needs, so a query never
reads the table rows), and the "latest trial" index carries the owner.

Filled from what the trials already store: ``nas_trials.latency_std_ms`` for
the trial's main device, the ``std_ms`` of its ``latencies`` entries for the
others. Only the new column is touched, so no other row changes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_rows = sa.table(
    "trial_latencies",
    sa.column("trial_id", sa.Integer()),
    sa.column("device_name", sa.String()),
    sa.column("own_std_ms", sa.Float()),
)


_COVERED = ["trial_id", "owner", "source", "own_std_ms", "arch_hash"]
_OLD_INDEXES = {
    "ix_trial_latencies_supernet_id_device_name_accuracy_latency_ms": [
        "supernet_id", "device_name", "accuracy", "latency_ms"],
    "ix_trial_latencies_supernet_id_device_name_latency_ms_accuracy": [
        "supernet_id", "device_name", "latency_ms", "accuracy"],
    "ix_trial_latencies_supernet_id_device_name_arch_hash_trial_id": [
        "supernet_id", "device_name", "arch_hash", "trial_id"],
}  # fmt: skip
_NEW_INDEXES = {
    "ix_trial_latencies_best": ["supernet_id", "device_name", "accuracy", "latency_ms", *_COVERED],
    "ix_trial_latencies_front": ["supernet_id", "device_name", "latency_ms", "accuracy", *_COVERED],
    "ix_trial_latencies_latest": [
        "supernet_id", "device_name", "arch_hash", "trial_id", "owner"],
}  # fmt: skip


def upgrade() -> None:
    op.add_column("trial_latencies", sa.Column("own_std_ms", sa.Float(), nullable=True))
    _backfill()
    for name in _OLD_INDEXES:
        op.drop_index(name, table_name="trial_latencies")
    for name, columns in _NEW_INDEXES.items():
        op.create_index(name, "trial_latencies", columns)


def _std(value: Any) -> float | None:
    """A usable std (finite, >= 0), else None."""
    try:
        std = float(value)
    except (TypeError, ValueError):
        return None
    return std if math.isfinite(std) and std >= 0 else None


def _backfill() -> None:
    conn = op.get_bind()
    # The main device's std sits in its own column: one statement.
    conn.execute(
        sa.text(
            "UPDATE trial_latencies SET own_std_ms = ("
            " SELECT t.latency_std_ms FROM nas_trials t"
            " WHERE t.id = trial_latencies.trial_id AND t.latency_std_ms >= 0)"
            " WHERE is_primary AND own_source = 'predicted'"
        )
    )
    # The other devices' stds live in the trials' JSON: read only the trials
    # whose JSON mentions one.
    found = conn.execute(
        sa.text(
            "SELECT r.trial_id, r.device_name, t.latencies FROM trial_latencies r"
            " JOIN nas_trials t ON t.id = r.trial_id"
            " WHERE NOT r.is_primary AND r.own_source = 'predicted'"
            " AND CAST(t.latencies AS TEXT) LIKE '%std_ms%'"
        )
    )
    updates: list[dict[str, Any]] = []
    for trial_id, device_name, latencies in found:
        if isinstance(latencies, str):
            latencies = json.loads(latencies)
        entry = (latencies or {}).get(device_name)
        std = _std(entry.get("std_ms")) if isinstance(entry, dict) else None
        if std is not None:
            updates.append({"tid": trial_id, "dev": device_name, "std": std})
    if updates:
        conn.execute(
            _rows.update()
            .where(
                _rows.c.trial_id == sa.bindparam("tid"),
                _rows.c.device_name == sa.bindparam("dev"),
            )
            .values(own_std_ms=sa.bindparam("std")),
            updates,
        )


def downgrade() -> None:
    for name in _NEW_INDEXES:
        op.drop_index(name, table_name="trial_latencies")
    for name, columns in _OLD_INDEXES.items():
        op.create_index(name, "trial_latencies", columns)
    with op.batch_alter_table("trial_latencies", schema=None) as batch_op:
        batch_op.drop_column("own_std_ms")
