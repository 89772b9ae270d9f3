"""``hwnas db``: schema migrations."""

from __future__ import annotations

import typer

from service.cli.common import emit, fail, open_runtime
from service.db import downgrade, schema_status, upgrade

app = typer.Typer(
    help="Create and migrate the database schema (Alembic; version table hwnas_alembic_version).",
    no_args_is_help=True,
)


@app.command("upgrade")
def upgrade_cmd(
    ctx: typer.Context,
    revision: str = typer.Argument("head", help="Target revision (default: the newest)."),
) -> None:
    """Migrate the database up to REVISION (creates a fresh database)."""
    with open_runtime(ctx, check_schema=False) as rt:
        before = schema_status(rt.engine)
        if before.state == "unversioned":
            raise fail(
                ctx, "the database has hwnas tables but no version table; refusing to migrate it"
            )
        upgrade(rt.engine, revision)
        after = schema_status(rt.engine)
        emit(
            ctx,
            {"from": before.current, "to": after.current, "head": after.head},
            [
                f"database schema: {before.current or 'empty'} -> {after.current} (head {after.head})"
            ],
        )


@app.command("downgrade")
def downgrade_cmd(
    ctx: typer.Context,
    revision: str = typer.Argument(
        ..., help="Target revision, or 'base' to drop every hwnas table."
    ),
) -> None:
    """Migrate the database down to REVISION. Data in dropped tables is lost."""
    with open_runtime(ctx, check_schema=False) as rt:
        before = schema_status(rt.engine)
        downgrade(rt.engine, revision)
        after = schema_status(rt.engine)
        emit(
            ctx,
            {"from": before.current, "to": after.current},
            [f"database schema: {before.current} -> {after.current or 'empty'}"],
        )


@app.command("current")
def current_cmd(ctx: typer.Context) -> None:
    """Show the database's schema revision and whether it is up to date."""
    with open_runtime(ctx, check_schema=False) as rt:
        status = schema_status(rt.engine)
        url = rt.engine.url.render_as_string(hide_password=True)
        advice = {
            "current": "up to date",
            "fresh": "empty: run `hwnas db upgrade` (the embedded database is created on first use)",
            "behind": "behind: run `hwnas db upgrade`",
            "ahead": "ahead of this hwnas: upgrade hwnas",
            "unversioned": "has hwnas tables but no version table",
        }[status.state]
        emit(
            ctx,
            {"url": url, "current": status.current, "head": status.head, "state": status.state},
            [
                f"database: {url}",
                f"revision: {status.current or 'none'} (head {status.head}): {advice}",
            ],
        )
