"""search verification: the ``awaiting_verification`` job state, jobs bound to
a host (``search_jobs.required_host``), and the std of predicted trial
latencies (``nas_trials.latency_std_ms``).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_STATES = "state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')"
_NEW_STATES = (
    "state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'awaiting_verification')"
)


def upgrade() -> None:
    with op.batch_alter_table("search_jobs", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_search_jobs_state"), type_="check")
        batch_op.alter_column(
            "state", existing_type=sa.String(length=16), type_=sa.String(length=32)
        )
        batch_op.create_check_constraint(batch_op.f("ck_search_jobs_state"), _NEW_STATES)
        batch_op.add_column(sa.Column("required_host", sa.String(length=255), nullable=True))
    with op.batch_alter_table("nas_trials", schema=None) as batch_op:
        batch_op.add_column(sa.Column("latency_std_ms", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("nas_trials", schema=None) as batch_op:
        batch_op.drop_column("latency_std_ms")
    # Jobs awaiting verification have no place in the old schema: they end as failed.
    op.execute(
        "UPDATE search_jobs SET state = 'failed', "
        "error = 'awaiting verification when the schema was downgraded' "
        "WHERE state = 'awaiting_verification'"
    )
    with op.batch_alter_table("search_jobs", schema=None) as batch_op:
        batch_op.drop_column("required_host")
        batch_op.drop_constraint(batch_op.f("ck_search_jobs_state"), type_="check")
        batch_op.alter_column(
            "state", existing_type=sa.String(length=32), type_=sa.String(length=16)
        )
        batch_op.create_check_constraint(batch_op.f("ck_search_jobs_state"), _OLD_STATES)
