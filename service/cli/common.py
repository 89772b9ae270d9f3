"""What every CLI command shares: global options, opening the installation,
turning domain errors into a one-line message and a non-zero exit code."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from service.db import SchemaError
from service.domain.errors import DomainError
from service.runtime import Runtime
from service.settings import Settings, SettingsError, load_settings

__all__ = ["CliState", "emit", "fail", "open_runtime", "settings_of"]


@dataclass
class CliState:
    """Global options given before the command (``hwnas --home X device list``)."""

    home: Path | None = None
    database_url: str | None = None
    config: Path | None = None
    as_json: bool = False


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` to stderr and return the exit to raise."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def settings_of(ctx: typer.Context) -> Settings:
    state: CliState = ctx.find_root().obj
    try:
        return load_settings(state.config, home=state.home, database_url=state.database_url)
    except SettingsError as exc:
        raise fail(str(exc), 2) from None


@contextmanager
def open_runtime(ctx: typer.Context, *, check_schema: bool = True) -> Iterator[Runtime]:
    """Open the installation for one command; domain errors become CLI errors."""
    settings = settings_of(ctx)
    try:
        rt = Runtime.open(settings, check_schema=check_schema)
    except SchemaError as exc:
        raise fail(str(exc)) from None
    try:
        yield rt
    except (DomainError, ValueError) as exc:
        raise fail(str(exc)) from None
    finally:
        rt.close()


def emit(ctx: typer.Context, data: Any, lines: list[str] | None = None) -> None:
    """Print ``data`` as JSON with ``--json``, else the human-readable ``lines``."""
    state: CliState = ctx.find_root().obj
    if state.as_json or lines is None:
        json.dump(data, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        for line in lines:
            typer.echo(line)
