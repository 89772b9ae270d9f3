"""The ``hwnas`` command line. One module per command group."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from service.cli import (
    config,
    db,
    device,
    export,
    plot,
    query,
    search,
    serve,
    supernet,
    token,
    worker,
)
from service.cli.common import CliState
from service.cli.quickstart import quickstart

__all__ = ["app", "main"]


def _wants_json(args: Sequence[str]) -> bool:
    end = list(args).index("--") if "--" in args else len(args)
    return "--json" in args[:end]


class _RootGroup(TyperGroup):
    """The root command: ``--json`` is accepted anywhere on the line (before
    ``--``), not only before the sub-command, as users type it; under it, a
    command line that does not parse is a JSON error too."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        if _wants_json(args):
            end = args.index("--") if "--" in args else len(args)
            head = [a for a in args[:end] if a != "--json"]
            args = ["--json", *head, *args[end:]]
        return super().parse_args(ctx, args)

    def main(self, args: Sequence[str] | None = None, *rest: Any, **kwargs: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        if not kwargs.get("standalone_mode", True) or rest or not _wants_json(argv):
            return super().main(argv, *rest, **kwargs)
        # Click prints its own usage errors (a box on stderr) in standalone
        # mode; here they are caught and printed in the API's error shape.
        try:
            code = super().main(argv, **{**kwargs, "standalone_mode": False})
        except TyperException as exc:  # click's usage and parameter errors
            exit_code = int(getattr(exc, "exit_code", 1))
            kind = "usage" if exit_code == 2 else "error"
            message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            json.dump({"error": {"type": kind, "message": message}}, sys.stdout, indent=2)
            sys.stdout.write("\n")
            sys.exit(exit_code)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"hwnas {version('hwnas')}")
        except PackageNotFoundError:  # running from a source tree that is not installed
            typer.echo("hwnas (not installed)")
        raise typer.Exit()


app = typer.Typer(
    name="hwnas",
    cls=_RootGroup,
    help=(
        "hwnas: hardware-aware neural architecture search. Train a once-for-all supernet, "
        "register target devices (a meta-learned latency predictor adapts from <=10 "
        "measurements), search for the best subnet under a latency budget, and export it."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
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
    as_json: bool = typer.Option(
        False, "--json", help="Print machine-readable JSON (accepted anywhere on the line)."
    ),
    _show_version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    from service.settings import unknown_environment

    ctx.obj = CliState(home=home, database_url=database_url, config=config, as_json=as_json)
    for name in unknown_environment():
        typer.secho(
            f"warning: {name} is set but hwnas has no such setting "
            "(`hwnas config show` lists them)",
            fg=typer.colors.YELLOW,
            err=True,
        )


app.command("quickstart")(quickstart)
app.add_typer(config.app, name="config")
app.add_typer(db.app, name="db")
app.add_typer(supernet.app, name="supernet")
app.add_typer(device.app, name="device")
app.add_typer(search.app, name="search")
app.add_typer(query.app, name="query")
app.add_typer(plot.app, name="plot")
app.add_typer(export.app, name="export")
app.add_typer(serve.app, name="serve")
app.add_typer(worker.app, name="worker")
app.add_typer(token.app, name="token")


def main() -> None:
    app()
