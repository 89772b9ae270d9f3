"""owners: devices and supernets get an owner (the API token's name, ``local``
for everything else) and a ``bundled`` flag (read-only rows shipped with
hwnas); supernets get ``error`` (why training failed); jobs without an owner
become ``local``'s.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spaces and device kinds that only the bundled benchmark registration creates.
_BUNDLED_SPACES = "('nb201')"
_BUNDLED_DEVICE_KINDS = "('table')"


def upgrade() -> None:
    for table in ("devices", "supernets"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("owner", sa.String(length=128), nullable=False, server_default="local")
            )
            batch_op.add_column(
                sa.Column("bundled", sa.Boolean(), nullable=False, server_default=sa.false())
            )
            batch_op.create_index(batch_op.f(f"ix_{table}_owner"), ["owner"], unique=False)
    with op.batch_alter_table("supernets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("error", sa.Text(), nullable=True))
    op.execute(f"UPDATE devices SET bundled = TRUE WHERE kind IN {_BUNDLED_DEVICE_KINDS}")
    op.execute(f"UPDATE supernets SET bundled = TRUE WHERE space_name IN {_BUNDLED_SPACES}")
    op.execute("UPDATE search_jobs SET owner = 'local' WHERE owner = ''")
    with op.batch_alter_table("search_jobs", schema=None) as batch_op:
        batch_op.alter_column("owner", existing_type=sa.String(length=128), server_default="local")
        batch_op.create_index(batch_op.f("ix_search_jobs_owner"), ["owner"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("search_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_search_jobs_owner"))
        batch_op.alter_column("owner", existing_type=sa.String(length=128), server_default=None)
    with op.batch_alter_table("supernets", schema=None) as batch_op:
        batch_op.drop_column("error")
    for table in ("devices", "supernets"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_owner"))
            batch_op.drop_column("bundled")
            batch_op.drop_column("owner")
