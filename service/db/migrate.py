"""Schema versioning with Alembic: upgrade, downgrade, and the start-up check.

Our version table is ``hwnas_alembic_version`` (not Alembic's default
``alembic_version``, which Optuna's RDB storage uses for its own schema) so that
an Optuna study and the hwnas schema can share one database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Literal

from sqlalchemy import Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "VERSION_TABLE",
    "SchemaError",
    "SchemaStatus",
    "alembic_config",
    "current_revision",
    "downgrade",
    "ensure_schema",
    "head_revision",
    "schema_status",
    "upgrade",
]

VERSION_TABLE = "hwnas_alembic_version"


class SchemaError(RuntimeError):
    """The database schema does not match this version of hwnas."""


@dataclass(frozen=True)
class SchemaStatus:
    current: str | None
    head: str
    state: Literal["fresh", "current", "behind", "ahead", "unversioned"]


def alembic_config(engine: Engine) -> Config:
    """An Alembic config that runs our migrations on ``engine``'s database."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("migrations")))
    # "%" must be doubled: the option goes through ConfigParser interpolation.
    url = engine.url.render_as_string(hide_password=False).replace("%", "%%")
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["engine"] = engine
    return config


_REVISION = re.compile(r"^revision\s*(?::[^=]*)?=\s*[\"']([^\"']+)[\"']", re.M)
_DOWN = re.compile(r"^down_revision\s*(?::[^=]*)?=\s*(?:[\"']([^\"']+)[\"']|None)", re.M)


def _revisions() -> dict[str, str | None]:
    """Every revision of the migrations package and the one it revises, read
    from the files' text: checking a database's version on every command must
    not cost importing Alembic (about 0.2 s)."""
    graph: dict[str, str | None] = {}
    for entry in (resources.files("migrations") / "versions").iterdir():
        if not entry.name.endswith(".py"):
            continue
        source = entry.read_text()
        rev, down = _REVISION.search(source), _DOWN.search(source)
        if rev is None or down is None:
            raise SchemaError(f"migration {entry.name} names no revision / down_revision")
        graph[rev.group(1)] = down.group(1)
    return graph


def head_revision() -> str:
    graph = _revisions()
    heads = sorted(set(graph) - {down for down in graph.values() if down is not None})
    if not heads:
        raise SchemaError("no migrations found in the migrations package")
    if len(heads) > 1:
        raise SchemaError(f"the migrations have several heads {heads}; merge them")
    return heads[0]


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    """The database's revision (None when it has no version table or row)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    if len(rows) > 1:
        raise SchemaError(f"the version table {VERSION_TABLE} holds several revisions {rows}")
    return rows[0] if rows else None


def schema_status(engine: Engine) -> SchemaStatus:
    head = head_revision()
    current = current_revision(engine)
    if current is None:
        from service.db.models import Base

        existing = set(inspect(engine).get_table_names()) & set(Base.metadata.tables)
        state: Literal["fresh", "current", "behind", "ahead", "unversioned"] = (
            "unversioned" if existing else "fresh"
        )
        return SchemaStatus(None, head, state)
    if current == head:
        return SchemaStatus(current, head, "current")
    known = set(_revisions())
    return SchemaStatus(current, head, "behind" if current in known else "ahead")


def ensure_schema(engine: Engine, *, auto_create: bool) -> SchemaStatus:
    """Check the schema before use; create a fresh database when ``auto_create``.

    The embedded database is created automatically. A server database is not:
    several workers starting at once must not race to migrate it, so an operator
    runs ``hwnas db upgrade`` once.
    """
    status = schema_status(engine)
    url = engine.url.render_as_string(hide_password=True)
    if status.state == "current":
        return status
    if status.state == "fresh" and auto_create:
        upgrade(engine)
        return schema_status(engine)
    if status.state == "fresh":
        raise SchemaError(f"database {url} has no hwnas schema yet: run `hwnas db upgrade`")
    if status.state == "behind":
        raise SchemaError(
            f"database {url} is at schema revision {status.current}, this hwnas needs "
            f"{status.head}: run `hwnas db upgrade`"
        )
    if status.state == "ahead":
        raise SchemaError(
            f"database {url} is at schema revision {status.current}, which this hwnas does "
            f"not know (its newest is {status.head}): upgrade hwnas, or run "
            f"`hwnas db downgrade {status.head}` with the newer hwnas"
        )
    raise SchemaError(
        f"database {url} has hwnas tables but no version table {VERSION_TABLE}: it was not "
        "created by `hwnas db upgrade`; back it up and recreate it"
    )
