"""accuracy in percent: convert what subnet evaluation and training stored as fractions.

Before this revision ``hwnas supernet eval`` (and the quickstart's predictor
step) stored a subnet's holdout accuracy as a fraction (0.33) while search
jobs stored percent (34.2) in the same ``nas_trials.accuracy`` column, and a
trained supernet's per-phase checks (``supernets.metrics``) were fractions.

The rows are told apart by who wrote them, never by their value (a percent
below 1 and a fraction look alike):

* a trial written by subnet evaluation has no job and records its
  calibration in ``details`` (``n_calibration``); search trials always have a
  job, benchmark tables none of these details;
* a supernet's ``metrics.phases`` come from its training manifest.

Rows converted here (and every row written since) carry
``accuracy_unit: "percent"`` in ``details`` / ``metrics``; a row that already
has it is left alone, so the conversion cannot be applied twice.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNIT = "accuracy_unit"

_trials = sa.table(
    "nas_trials",
    sa.column("id", sa.Integer),
    sa.column("job_id", sa.Integer),
    sa.column("supernet_id", sa.Integer),
    sa.column("accuracy", sa.Float),
    sa.column("details", sa.JSON),
)
_supernets = sa.table("supernets", sa.column("id", sa.Integer), sa.column("metrics", sa.JSON))


def _scaled(value: Any, factor: float) -> Any:
    return None if value is None else float(value) * factor


def _convert_trials(factor: float, to_percent: bool) -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(_trials.c.id, _trials.c.accuracy, _trials.c.details).where(
            _trials.c.job_id.is_(None), _trials.c.supernet_id.is_not(None)
        )
    ).all()
    for row_id, accuracy, details in rows:
        details = dict(details or {})
        if "n_calibration" not in details:  # not written by subnet evaluation
            continue
        if (details.get(UNIT) == "percent") == to_percent:
            continue  # already in the target unit
        if "accuracy" in details:
            details["accuracy"] = _scaled(details["accuracy"], factor)
        if to_percent:
            details[UNIT] = "percent"
        else:
            details.pop(UNIT, None)
        bind.execute(
            sa.update(_trials)
            .where(_trials.c.id == row_id)
            .values(accuracy=_scaled(accuracy, factor), details=details)
        )


def _convert_phases(factor: float, to_percent: bool) -> None:
    bind = op.get_bind()
    for row_id, metrics in bind.execute(sa.select(_supernets.c.id, _supernets.c.metrics)).all():
        metrics = dict(metrics or {})
        phases = metrics.get("phases")
        if not phases or (metrics.get(UNIT) == "percent") == to_percent:
            continue
        metrics["phases"] = [
            {
                k: _scaled(v, factor) if k.startswith("accuracy_") else v
                for k, v in dict(phase).items()
            }
            for phase in phases
        ]
        if to_percent:
            metrics[UNIT] = "percent"
        else:
            metrics.pop(UNIT, None)
        bind.execute(sa.update(_supernets).where(_supernets.c.id == row_id).values(metrics=metrics))


def _run(steps: Sequence[Callable[[float, bool], None]], factor: float, to_percent: bool) -> None:
    for step in steps:
        step(factor, to_percent)


def upgrade() -> None:
    _run((_convert_trials, _convert_phases), 100.0, True)


def downgrade() -> None:
    _run((_convert_trials, _convert_phases), 0.01, False)
