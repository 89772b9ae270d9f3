"""How the CLI prints: JSON under ``--json`` (the same shape the API returns),
else tables and key/value records for people (rich), and errors either way.

Every command prints through :func:`emit`, :func:`emit_table` or
:func:`emit_record`, so ``--json`` behaves the same on every command.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import typer

__all__ = ["Column", "emit", "emit_record", "emit_table", "fail", "json_mode"]


def json_mode(ctx: typer.Context) -> bool:
    """True when ``--json`` was given (anywhere on the line: see ``service.cli``)."""
    state = ctx.find_root().obj
    return bool(getattr(state, "as_json", False))


def _dump(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def fail(ctx: typer.Context, message: str, code: int = 1, *, kind: str = "error") -> typer.Exit:
    """Report ``message`` (one line on stderr, or a JSON error object on stdout
    under ``--json``, the API's error shape) and return the exit to raise."""
    if json_mode(ctx):
        _dump({"error": {"type": kind, "message": message}})
    else:
        typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def emit(ctx: typer.Context, data: Any, lines: Sequence[str] | None = None) -> None:
    """Print ``data`` as JSON with ``--json``, else the human-readable ``lines``."""
    if json_mode(ctx) or lines is None:
        _dump(data)
    else:
        for line in lines:
            typer.echo(line)


@dataclass(frozen=True)
class Column:
    """One table column: its header and how to read the cell from a row."""

    header: str
    key: str | Callable[[Mapping[str, Any]], Any]
    justify: str = "left"

    def cell(self, row: Mapping[str, Any]) -> str:
        value = self.key(row) if callable(self.key) else row.get(self.key)
        return _text(value)


def _text(value: Any, width: int = 60) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
    if isinstance(value, Mapping | list | tuple):
        text = json.dumps(value, default=str, separators=(", ", ": "))
        return text if len(text) <= width else text[: width - 1] + "…"
    return str(value)


def _console() -> Any:
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        # Piped or captured: do not squeeze tables into rich's default 80 columns.
        console = Console(width=160)
    return console


def emit_table(
    ctx: typer.Context,
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[Column],
    *,
    title: str | None = None,
    empty: str = "nothing to show",
    data: Any = None,
) -> None:
    """A table for people; ``rows`` (or ``data`` when given) as JSON with ``--json``."""
    if json_mode(ctx):
        _dump(rows if data is None else data)
        return
    if not rows:
        typer.echo(empty)
        return
    from rich.table import Table

    table = Table(title=title, title_justify="left", header_style="bold")
    for col in columns:
        table.add_column(col.header, justify=col.justify)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(*(col.cell(row) for col in columns))
    _console().print(table)


def emit_record(
    ctx: typer.Context,
    data: Mapping[str, Any],
    *,
    title: str | None = None,
    fields: Sequence[str] | None = None,
    data_for_json: Any = None,
) -> None:
    """One resource as ``key  value`` lines (nested values shortened); the whole
    record (or ``data_for_json`` when given) as JSON with ``--json``."""
    if json_mode(ctx):
        _dump(data if data_for_json is None else data_for_json)
        return
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    for key in fields or list(data):
        table.add_row(key, _text(data.get(key), width=100))
    _console().print(table)
