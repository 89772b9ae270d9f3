"""The ``hwnas`` command line. One module per command group."""

from __future__ import annotations

from pathlib import Path

import typer

from service.cli import db, device, export, query, search, serve, supernet, token, worker
from service.cli.common import CliState
from service.cli.quickstart import quickstart

__all__ = ["app", "main"]

app = typer.Typer(
    name="hwnas",
    help=(
        "hwnas: hardware-aware neural architecture search. Train a once-for-all supernet, "
        "register target devices (a meta-learned latency predictor adapts from <=10 "
        "measurements), search for the best subnet under a latency budget, and export it."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _global_options(
    ctx: typer.Context,
    home: Path | None = typer.Option(
        None, "--home", help="hwnas home directory (env HWNAS_HOME; default ~/.hwnas)."
    ),
    database_url: str | None = typer.Option(
        None, "--database-url", help="SQLAlchemy database URL (env HWNAS_DATABASE_URL)."
    ),
    config: Path | None = typer.Option(
        None, "--config", help="TOML settings file (env HWNAS_CONFIG; default <home>/config.toml)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    ctx.obj = CliState(home=home, database_url=database_url, config=config, as_json=as_json)


app.command("quickstart")(quickstart)
app.add_typer(db.app, name="db")
app.add_typer(supernet.app, name="supernet")
app.add_typer(device.app, name="device")
app.add_typer(search.app, name="search")
app.add_typer(query.app, name="query")
app.add_typer(export.app, name="export")
app.add_typer(serve.app, name="serve")
app.add_typer(worker.app, name="worker")
app.add_typer(token.app, name="token")


def main() -> None:
    app()
