"""What every CLI command shares: global options, opening the installation,
turning domain errors into a one-line message and a non-zero exit code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import typer
from sqlalchemy.exc import OperationalError

from service.cli.output import emit, fail
from service.db import SchemaError
from service.domain.errors import ConflictError, NotFoundError
from service.runtime import Runtime
from service.settings import Settings, SettingsError, load_settings

__all__ = ["CliState", "emit", "fail", "open_runtime", "safe_url", "settings_of"]


@dataclass
class CliState:
    """Global options (``hwnas --home X device list``; ``--json`` anywhere)."""

    home: Path | None = None
    database_url: str | None = None
    config: Path | None = None
    as_json: bool = False


def settings_of(ctx: typer.Context) -> Settings:
    state: CliState = ctx.find_root().obj
    try:
        return load_settings(state.config, home=state.home, database_url=state.database_url)
    except SettingsError as exc:
        raise fail(ctx, str(exc), 2, kind="settings") from None


def safe_url(url: str) -> str:
    """A database URL fit to print (password hidden)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL: show only its scheme
        return url.split(":", 1)[0] + ":…"


def _unreachable(ctx: typer.Context, settings: Settings, exc: OperationalError) -> typer.Exit:
    first = str(exc.orig or exc).strip().splitlines()[0] if str(exc.orig or exc).strip() else ""
    return fail(
        ctx,
        f"cannot use the database {safe_url(settings.resolved_database_url)}: {first}",
        kind="database",
    )


@contextmanager
def open_runtime(ctx: typer.Context, *, check_schema: bool = True) -> Iterator[Runtime]:
    """Open the installation for one command; domain errors, a database that
    cannot be reached and schema mismatches become one-line CLI errors."""
    settings = settings_of(ctx)
    try:
        rt = Runtime.open(settings, check_schema=check_schema)
    except SchemaError as exc:
        raise fail(ctx, str(exc), kind="schema") from None
    except OperationalError as exc:
        raise _unreachable(ctx, settings, exc) from None
    try:
        yield rt
    except NotFoundError as exc:
        raise fail(ctx, str(exc), kind="not_found") from None
    except ConflictError as exc:
        raise fail(ctx, str(exc), kind="conflict") from None
    except ValueError as exc:  # DomainError included: the API answers these with 422
        raise fail(ctx, str(exc), kind="invalid") from None
    except OperationalError as exc:
        raise _unreachable(ctx, settings, exc) from None
    finally:
        rt.close()
