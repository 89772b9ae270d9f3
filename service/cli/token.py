"""``hwnas token``: API tokens for the HTTP service."""

from __future__ import annotations

import typer

from service.cli.common import emit, open_runtime
from service.cli.output import Column, emit_table
from service.domain import tokens

app = typer.Typer(
    help="Create, list and revoke API tokens for `hwnas serve`.", no_args_is_help=True
)


@app.command("create")
def create_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A name for the token (who or what uses it)."),
    read_only: bool = typer.Option(False, "--read-only", help="Token may only read."),
) -> None:
    """Create a token and print its secret (shown only this once)."""
    with open_runtime(ctx) as rt, rt.session() as s:
        row, secret = tokens.create_token(s, name, ("read",) if read_only else ("read", "write"))
        emit(
            ctx,
            {"name": row.name, "scopes": row.scopes, "token": secret},
            [
                f"token {row.name} ({', '.join(row.scopes)}): {secret}",
                "store it now: it is not shown again",
            ],
        )


@app.command("list")
def list_cmd(ctx: typer.Context) -> None:
    """List tokens (names and scopes; never secrets)."""
    with open_runtime(ctx) as rt, rt.session() as s:
        rows = tokens.list_tokens(s)
        data = [
            {
                "name": r.name,
                "scopes": r.scopes,
                "created_at": r.created_at,
                "last_used_at": r.last_used_at,
                "revoked": r.revoked_at is not None,
            }
            for r in rows
        ]
        emit_table(
            ctx,
            data,
            [
                Column("token", "name"),
                Column("scopes", lambda r: ", ".join(r["scopes"])),
                Column("state", lambda r: "revoked" if r["revoked"] else "active"),
                Column("created", "created_at"),
                Column("last used", "last_used_at"),
            ],
            empty="no tokens: `hwnas token create NAME`",
        )


@app.command("revoke")
def revoke_cmd(ctx: typer.Context, name: str = typer.Argument(..., help="Token name.")) -> None:
    """Revoke a token; requests using it are refused from now on."""
    with open_runtime(ctx) as rt, rt.session() as s:
        row = tokens.revoke_token(s, name)
        emit(ctx, {"name": row.name, "revoked_at": row.revoked_at}, [f"token {row.name} revoked"])
