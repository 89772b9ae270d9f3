"""``hwnas config``: the effective settings and where each came from."""

from __future__ import annotations

import typer

from service.cli.common import CliState, fail, safe_url
from service.cli.output import Column, emit_table
from service.settings import SettingsError, describe_settings

app = typer.Typer(help="Show the effective configuration.", no_args_is_help=True)


@app.command("show")
def show_cmd(ctx: typer.Context) -> None:
    """Every setting's effective value and its origin: flag, environment variable,
    config file or default (flags > environment > file > defaults)."""
    state: CliState = ctx.find_root().obj
    try:
        rows = describe_settings(state.config, home=state.home, database_url=state.database_url)
    except SettingsError as exc:
        raise fail(ctx, str(exc), 2, kind="settings") from None
    data = [
        {
            "name": r.name,
            "value": safe_url(r.value) if r.name == "database_url" else r.value,
            "source": r.source,
            "description": r.description,
        }
        for r in rows
    ]
    emit_table(
        ctx,
        data,
        [Column("setting", "name"), Column("value", "value"), Column("from", "source")],
        title="hwnas settings (flags > environment > config file > defaults)",
        data={r["name"]: {"value": r["value"], "source": r["source"]} for r in data},
    )
