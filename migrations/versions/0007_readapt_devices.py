"""re-adapt stored devices: every device whose newest latency model in a space
was saved before payload version 2 (no uncertainty) gets a new model version
adapted afresh from its stored measurements, so that it predicts with
uncertainty (``DeviceLatencyPredictor.predict_with_uncertainty``). The old
versions stay; a device measured with an older reference set re-adapts from
its measured architectures, whatever the set. A device whose space has no
predictor in this hwnas, or that has no stored measurements, keeps its model
(it predicts, without uncertainty) and is named in the log.

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Written into the new versions' metrics: downgrade removes exactly these.
MARK = "readapted_by_migration"

log = logging.getLogger("alembic.runtime.migration")

_models = sa.table(
    "predictor_models",
    sa.column("id", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("scope", sa.String),
    sa.column("space_name", sa.String),
    sa.column("device_id", sa.Integer),
    sa.column("supernet_id", sa.Integer),
    sa.column("version", sa.Integer),
    sa.column("blob", sa.LargeBinary),
    sa.column("path", sa.Text),
    sa.column("metrics", sa.JSON),
    sa.column("n_train", sa.Integer),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
_measurements = sa.table(
    "latency_measurements",
    sa.column("id", sa.Integer),
    sa.column("device_id", sa.Integer),
    sa.column("space_name", sa.String),
    sa.column("arch", sa.JSON),
    sa.column("latency_ms", sa.Float),
    sa.column("is_reference", sa.Boolean),
)
_devices = sa.table("devices", sa.column("id", sa.Integer), sa.column("name", sa.String))


def _has_uncertainty(blob: bytes) -> bool:
    try:
        payload = json.loads(bytes(blob))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return True  # not ours to judge: left as it is
    return not (isinstance(payload, dict) and payload.get("posterior_cov") is None)


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(_models)
        .where(_models.c.kind == "latency", _models.c.device_id.is_not(None))
        .order_by(_models.c.scope, _models.c.version)
    ).all()
    newest: dict[tuple[int, str], Any] = {}
    top_version: dict[str, int] = {}
    for row in rows:
        newest[(row.device_id, row.space_name)] = row  # ordered: the last is the newest
        top_version[row.scope] = max(top_version.get(row.scope, 0), row.version)
    stale = [r for r in newest.values() if r.blob is not None and not _has_uncertainty(r.blob)]
    if not stale:
        return
    from predictors.latency import readapt_device

    names = dict(conn.execute(sa.select(_devices.c.id, _devices.c.name)).all())
    for row in stale:
        device = names.get(row.device_id, f"#{row.device_id}")
        measured = conn.execute(
            sa.select(
                _measurements.c.arch, _measurements.c.latency_ms, _measurements.c.is_reference
            )
            .where(
                _measurements.c.device_id == row.device_id,
                _measurements.c.space_name == row.space_name,
            )
            .order_by(_measurements.c.id)
        ).all()
        pairs = [(_json(m.arch), float(m.latency_ms)) for m in measured]
        refs = [_json(m.arch) for m in measured if m.is_reference]
        if not pairs:
            log.warning(
                "device %s (%s): no stored measurements; model kept", device, row.space_name
            )
            continue
        try:
            adaptation = readapt_device(
                row.space_name, pairs, references=refs or None, device=device
            )
        except ValueError as exc:
            log.warning(
                "device %s (%s): not re-adapted (%s); model kept", device, row.space_name, exc
            )
            continue
        version = top_version[row.scope] + 1
        top_version[row.scope] = version
        metrics = {
            **(_json(row.metrics) or {}),
            **adaptation.quality,
            "outliers": list(adaptation.outliers),
            MARK: {"revision": revision, "from_version": row.version},
        }
        conn.execute(
            sa.insert(_models).values(
                kind="latency",
                scope=row.scope,
                space_name=row.space_name,
                device_id=row.device_id,
                supernet_id=None,
                version=version,
                blob=adaptation.model.to_bytes(),
                path=None,
                metrics=metrics,
                n_train=adaptation.model.n_measurements,
                created_at=datetime.now(UTC),
            )
        )
        log.info("device %s (%s): latency model v%d re-adapted", device, row.space_name, version)


def _json(value: Any) -> Any:
    """A JSON column's value (SQLite can hand back the text when read raw)."""
    return json.loads(value) if isinstance(value, str) else value


def downgrade() -> None:
    conn = op.get_bind()
    ids = [
        row.id
        for row in conn.execute(
            sa.select(_models.c.id, _models.c.metrics).where(_models.c.kind == "latency")
        )
        if isinstance(_json(row.metrics), dict) and MARK in _json(row.metrics)
    ]
    if ids:
        conn.execute(sa.delete(_models).where(_models.c.id.in_(ids)))
