"""Database layer: models, engines and sessions, schema migrations."""

from service.db.engine import make_engine, make_session_factory, read_only
from service.db.migrate import (
    VERSION_TABLE,
    SchemaError,
    SchemaStatus,
    current_revision,
    downgrade,
    ensure_schema,
    head_revision,
    schema_status,
    upgrade,
)
from service.db.models import (
    JOB_STATES,
    SOURCES,
    ApiToken,
    Base,
    Device,
    LatencyMeasurement,
    PredictorModel,
    SearchJob,
    Supernet,
    Trial,
    utcnow,
)

__all__ = [
    "JOB_STATES",
    "SOURCES",
    "VERSION_TABLE",
    "ApiToken",
    "Base",
    "Device",
    "LatencyMeasurement",
    "PredictorModel",
    "SchemaError",
    "SchemaStatus",
    "SearchJob",
    "Supernet",
    "Trial",
    "current_revision",
    "downgrade",
    "ensure_schema",
    "head_revision",
    "make_engine",
    "make_session_factory",
    "read_only",
    "schema_status",
    "upgrade",
    "utcnow",
]
