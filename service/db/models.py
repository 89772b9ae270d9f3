"""SQLAlchemy 2 models of the hwnas service schema.

The schema is owned by Alembic (``migrations/``); these models must match it
exactly (a test runs autogenerate against a migrated database and expects no
diff). The tables share a database with Optuna's (``studies``, ``trials``,
``trial_*``, ``version_info``, ``alembic_version``), so none of our names may
collide with those: our trial table is ``nas_trials``.

Conventions:
* timestamps are timezone-aware UTC;
* enumerations are short strings guarded by CHECK constraints (portable across
  SQLite and PostgreSQL, and readable in ad-hoc SQL);
* every measured-or-predicted number carries a ``*_source`` column, because a
  prediction must never be mistaken for a measurement.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import false as sa_false
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

__all__ = [
    "JOB_STATES",
    "SOURCES",
    "ApiToken",
    "Base",
    "Device",
    "LatencyMeasurement",
    "PredictorModel",
    "SearchJob",
    "Supernet",
    "Trial",
    "TrialLatency",
    "UTCDateTime",
    "utcnow",
]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Lifecycle of a search job. ``queued -> running -> succeeded|failed``;
#: ``cancelled`` from queued or running. A running job whose lease expired is
#: put back to ``queued`` (its finished trials are kept). A search on a device
#: no worker can measure ends ``running -> awaiting_verification`` and becomes
#: ``succeeded`` when the user submits the candidates' measured latencies.
JOB_STATES = (
    "queued",
    "running",
    "succeeded",
    "failed",
    "cancelled",
    "awaiting_verification",
)
#: Where a number came from.
SOURCES = ("measured", "predicted")
SUPERNET_STATES = ("training", "ready", "failed")
PREDICTOR_KINDS = ("accuracy", "latency")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend.

    SQLite has no timezone type and hands back naive values; comparing those
    with aware ones raises, so values are normalised to aware UTC both ways.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use an aware datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class OwnedMixin:
    """Who may see and change the row (see ``service.domain.owners``): the
    API token's name, or ``local``; bundled rows are read-only for everyone."""

    owner: Mapped[str] = mapped_column(
        String(128), default="local", server_default="local", index=True
    )
    bundled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())


class Supernet(OwnedMixin, TimestampMixin, Base):
    """A search space instance that subnets come from: a trained weight-sharing
    supernet (checkpoint), or a tabular benchmark space (no checkpoint)."""

    __tablename__ = "supernets"
    __table_args__ = (CheckConstraint(_in("status", SUPERNET_STATES), name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    space_name: Mapped[str] = mapped_column(String(64))
    space_config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    dataset: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    n_classes: Mapped[int | None] = mapped_column(Integer)
    checkpoint_path: Mapped[str | None] = mapped_column(Text)
    schedule: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="ready")
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    description: Mapped[str] = mapped_column(Text, default="")
    #: Why training failed (status ``failed``); None otherwise.
    error: Mapped[str | None] = mapped_column(Text)


class Device(OwnedMixin, TimestampMixin, Base):
    """A latency target: a (host, backend, threads, batch) combination, a remote
    device whose latencies are submitted, or a device from a benchmark table."""

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text, default="")
    host: Mapped[str | None] = mapped_column(String(255))
    backend: Mapped[str | None] = mapped_column(String(32))
    threads: Mapped[int | None] = mapped_column(Integer)
    batch_size: Mapped[int] = mapped_column(Integer, default=1)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    measurements: Mapped[list[LatencyMeasurement]] = relationship(
        back_populates="device", cascade="all, delete-orphan", passive_deletes=True
    )


class LatencyMeasurement(Base):
    """One real latency measurement of one architecture on one device."""

    __tablename__ = "latency_measurements"
    __table_args__ = (
        CheckConstraint("latency_ms > 0", name="positive_latency"),
        Index(None, "device_id", "space_name", "arch_hash"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    space_name: Mapped[str] = mapped_column(String(64))
    arch: Mapped[dict[str, Any]] = mapped_column(JSON)
    arch_hash: Mapped[str] = mapped_column(String(64))
    latency_ms: Mapped[float] = mapped_column(Float)
    spread_ms: Mapped[float | None] = mapped_column(Float)
    method: Mapped[str] = mapped_column(String(32))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    is_reference: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    device: Mapped[Device] = relationship(back_populates="measurements")


class PredictorModel(Base):
    """A fitted predictor, versioned per (kind, space, device or supernet)."""

    __tablename__ = "predictor_models"
    __table_args__ = (
        CheckConstraint(_in("kind", PREDICTOR_KINDS), name="kind"),
        CheckConstraint("blob IS NOT NULL OR path IS NOT NULL", name="has_payload"),
        # NULLs never collide in a unique constraint, so versions are numbered
        # per a non-null scope key ("device:3", "supernet:2") instead of per
        # the nullable foreign keys.
        UniqueConstraint("kind", "scope", "version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(128))
    space_name: Mapped[str] = mapped_column(String(64))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    supernet_id: Mapped[int | None] = mapped_column(ForeignKey("supernets.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    blob: Mapped[bytes | None] = mapped_column(LargeBinary)
    path: Mapped[str | None] = mapped_column(Text)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    n_train: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SearchJob(TimestampMixin, Base):
    """A queued or running search. Workers claim queued jobs with a row lock
    and keep a lease alive with heartbeats; see ``service.jobs``."""

    __tablename__ = "search_jobs"
    __table_args__ = (
        CheckConstraint(_in("state", JOB_STATES), name="state"),
        Index(None, "state", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    supernet_id: Mapped[int | None] = mapped_column(ForeignKey("supernets.id", ondelete="SET NULL"))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(32), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    n_evaluations: Mapped[int] = mapped_column(Integer, default=0)
    owner: Mapped[str] = mapped_column(
        String(128), default="local", server_default="local", index=True
    )
    worker_id: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    study_name: Mapped[str | None] = mapped_column(String(255))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Only a worker on this host may claim the job (a search on a local device
    #: measures latencies on that machine); None: any worker.
    required_host: Mapped[str | None] = mapped_column(String(255))

    trials: Mapped[list[Trial]] = relationship(back_populates="job", passive_deletes=True)


class Trial(TimestampMixin, Base):
    """One evaluated architecture. Accuracy and latency each say whether they were
    measured or predicted; the best-subnet query prefers measured numbers."""

    __tablename__ = "nas_trials"
    __table_args__ = (
        CheckConstraint(_in("accuracy_source", SOURCES), name="accuracy_source"),
        CheckConstraint(
            "latency_source IS NULL OR " + _in("latency_source", SOURCES), name="latency_source"
        ),
        # A job evaluates an architecture once; resumed jobs rely on this.
        UniqueConstraint("job_id", "arch_hash"),
        # The best-subnet query: filter by space/supernet and device, range on
        # latency, order by accuracy.
        Index(None, "supernet_id", "device_id", "latency_ms", "accuracy"),
        Index(None, "arch_hash"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("search_jobs.id", ondelete="CASCADE"))
    supernet_id: Mapped[int | None] = mapped_column(ForeignKey("supernets.id", ondelete="CASCADE"))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id", ondelete="SET NULL"))
    space_name: Mapped[str] = mapped_column(String(64))
    arch: Mapped[dict[str, Any]] = mapped_column(JSON)
    arch_hash: Mapped[str] = mapped_column(String(64))
    accuracy: Mapped[float | None] = mapped_column(Float)
    accuracy_source: Mapped[str] = mapped_column(String(16), default="measured")
    latency_ms: Mapped[float | None] = mapped_column(Float)
    latency_source: Mapped[str | None] = mapped_column(String(16))
    #: Standard deviation of a *predicted* ``latency_ms`` when the device's
    #: latency model gives one (the chance constraint of the answers uses it).
    latency_std_ms: Mapped[float | None] = mapped_column(Float)
    #: Latency on further devices: {device_name: {"ms": float, "source": str,
    #: "std_ms": float (optional)}}.
    latencies: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    macs: Mapped[int | None] = mapped_column(BigInteger)
    params: Mapped[int | None] = mapped_column(BigInteger)
    optuna_trial_number: Mapped[int | None] = mapped_column(Integer)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    job: Mapped[SearchJob | None] = relationship(back_populates="trials")


#: Columns the query indexes of ``trial_latencies`` carry after their keys.
_COVERED = ("trial_id", "owner", "source", "own_std_ms", "arch_hash")


class TrialLatency(Base):
    """One trial's latency on one device, as the best-subnet query reads it.

    Derived from ``nas_trials`` (the trial's own latency and its ``latencies``
    column) and ``latency_measurements`` (a stored measurement of the
    architecture on the device wins: ``latency_ms``/``source`` are the
    effective values, ``own_ms``/``own_source`` what the trial itself said).
    Kept in step by ``service.domain.subnets`` and ``service.domain.devices``
    whenever either side is written, so that "best under B ms on D" and the
    Pareto front are indexed SQL instead of a scan of every trial's JSON.
    Only trials with a measured accuracy have rows.
    """

    __tablename__ = "trial_latencies"
    __table_args__ = (
        CheckConstraint(_in("source", SOURCES), name="source"),
        # The two query indexes hold every column a candidate needs (covering:
        # a query reads the index alone, never the table rows).
        # Best under a budget: highest accuracy first, latency filtered.
        Index(
            "ix_trial_latencies_best",
            *("supernet_id", "device_name", "accuracy", "latency_ms", *_COVERED),
        ),
        # Closest / Pareto front: by latency.
        Index(
            "ix_trial_latencies_front",
            *("supernet_id", "device_name", "latency_ms", "accuracy", *_COVERED),
        ),
        # "Latest evaluation of an architecture wins" (owner: the caller's
        # latest) and measurement updates.
        Index(
            "ix_trial_latencies_latest",
            *("supernet_id", "device_name", "arch_hash", "trial_id", "owner"),
        ),
    )

    trial_id: Mapped[int] = mapped_column(
        ForeignKey("nas_trials.id", ondelete="CASCADE"), primary_key=True
    )
    device_name: Mapped[str] = mapped_column(String(128), primary_key=True)
    supernet_id: Mapped[int] = mapped_column(ForeignKey("supernets.id", ondelete="CASCADE"))
    arch_hash: Mapped[str] = mapped_column(String(64))
    accuracy: Mapped[float] = mapped_column(Float)
    latency_ms: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(16))
    #: The trial's own latency for the device (None: it had none, the row
    #: exists only because the architecture was measured there).
    own_ms: Mapped[float | None] = mapped_column(Float)
    own_source: Mapped[str | None] = mapped_column(String(16))
    #: Std of ``own_ms`` when that is a prediction the device's model gave a
    #: std for (None otherwise). It applies while ``source`` is predicted: a
    #: predicted latency meets a budget only at its one-sided upper bound
    #: ``latency_ms + z * own_std_ms``; a measured one is exact.
    own_std_ms: Mapped[float | None] = mapped_column(Float)
    #: True when the device was the trial's main device (``nas_trials.device_id``).
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The owner of the trial's job; None for trials outside any job.
    owner: Mapped[str | None] = mapped_column(String(128))


class ApiToken(Base):
    """A bearer token for the HTTP API. Only a SHA-256 of the secret is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
