"""initial schema: supernets, devices, latency measurements, predictor models,
search jobs, trials (nas_trials) and API tokens.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("name", name=op.f("uq_api_tokens_name")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_table(
        "devices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("backend", sa.String(length=32), nullable=True),
        sa.Column("threads", sa.Integer(), nullable=True),
        sa.Column("batch_size", sa.Integer(), nullable=False),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
        sa.UniqueConstraint("name", name=op.f("uq_devices_name")),
    )
    op.create_table(
        "supernets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("space_name", sa.String(length=64), nullable=False),
        sa.Column("space_config", sa.JSON(), nullable=False),
        sa.Column("dataset", sa.JSON(), nullable=False),
        sa.Column("n_classes", sa.Integer(), nullable=True),
        sa.Column("checkpoint_path", sa.Text(), nullable=True),
        sa.Column("schedule", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('training', 'ready', 'failed')", name=op.f("ck_supernets_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supernets")),
        sa.UniqueConstraint("name", name=op.f("uq_supernets_name")),
    )
    op.create_table(
        "latency_measurements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("space_name", sa.String(length=64), nullable=False),
        sa.Column("arch", sa.JSON(), nullable=False),
        sa.Column("arch_hash", sa.String(length=64), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("spread_ms", sa.Float(), nullable=True),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("is_reference", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("latency_ms > 0", name=op.f("ck_latency_measurements_positive_latency")),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_latency_measurements_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_latency_measurements")),
    )
    with op.batch_alter_table("latency_measurements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_latency_measurements_device_id_space_name_arch_hash"),
            ["device_id", "space_name", "arch_hash"],
            unique=False,
        )

    op.create_table(
        "predictor_models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("scope", sa.String(length=128), nullable=False),
        sa.Column("space_name", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("supernet_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=True),
        sa.Column("path", sa.Text(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("n_train", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('accuracy', 'latency')", name=op.f("ck_predictor_models_kind")
        ),
        sa.CheckConstraint(
            "blob IS NOT NULL OR path IS NOT NULL", name=op.f("ck_predictor_models_has_payload")
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_predictor_models_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["supernet_id"],
            ["supernets.id"],
            name=op.f("fk_predictor_models_supernet_id_supernets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_predictor_models")),
        sa.UniqueConstraint(
            "kind", "scope", "version", name=op.f("uq_predictor_models_kind_scope_version")
        ),
    )
    op.create_table(
        "search_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("supernet_id", sa.Integer(), nullable=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("n_evaluations", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("worker_id", sa.String(length=255), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("study_name", sa.String(length=255), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')",
            name=op.f("ck_search_jobs_state"),
        ),
        sa.ForeignKeyConstraint(
            ["supernet_id"],
            ["supernets.id"],
            name=op.f("fk_search_jobs_supernet_id_supernets"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_jobs")),
    )
    with op.batch_alter_table("search_jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_search_jobs_state_created_at"), ["state", "created_at"], unique=False
        )

    op.create_table(
        "nas_trials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("supernet_id", sa.Integer(), nullable=True),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("space_name", sa.String(length=64), nullable=False),
        sa.Column("arch", sa.JSON(), nullable=False),
        sa.Column("arch_hash", sa.String(length=64), nullable=False),
        sa.Column("accuracy", sa.Float(), nullable=True),
        sa.Column("accuracy_source", sa.String(length=16), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("latency_source", sa.String(length=16), nullable=True),
        sa.Column("latencies", sa.JSON(), nullable=False),
        sa.Column("macs", sa.BigInteger(), nullable=True),
        sa.Column("params", sa.BigInteger(), nullable=True),
        sa.Column("optuna_trial_number", sa.Integer(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "accuracy_source IN ('measured', 'predicted')",
            name=op.f("ck_nas_trials_accuracy_source"),
        ),
        sa.CheckConstraint(
            "latency_source IS NULL OR latency_source IN ('measured', 'predicted')",
            name=op.f("ck_nas_trials_latency_source"),
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_nas_trials_device_id_devices"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["search_jobs.id"],
            name=op.f("fk_nas_trials_job_id_search_jobs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["supernet_id"],
            ["supernets.id"],
            name=op.f("fk_nas_trials_supernet_id_supernets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nas_trials")),
        sa.UniqueConstraint("job_id", "arch_hash", name=op.f("uq_nas_trials_job_id_arch_hash")),
    )
    with op.batch_alter_table("nas_trials", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_nas_trials_arch_hash"), ["arch_hash"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_nas_trials_supernet_id_device_id_latency_ms_accuracy"),
            ["supernet_id", "device_id", "latency_ms", "accuracy"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("nas_trials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nas_trials_supernet_id_device_id_latency_ms_accuracy"))
        batch_op.drop_index(batch_op.f("ix_nas_trials_arch_hash"))

    op.drop_table("nas_trials")
    with op.batch_alter_table("search_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_search_jobs_state_created_at"))

    op.drop_table("search_jobs")
    op.drop_table("predictor_models")
    with op.batch_alter_table("latency_measurements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_latency_measurements_device_id_space_name_arch_hash"))

    op.drop_table("latency_measurements")
    op.drop_table("supernets")
    op.drop_table("devices")
    op.drop_table("api_tokens")
