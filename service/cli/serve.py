"""``hwnas serve``: the HTTP API."""

from __future__ import annotations

import ipaddress

import typer

from service.cli.common import fail, open_runtime, settings_of

app = typer.Typer(help="Run the HTTP API (FastAPI + uvicorn) over the configured database.")


def is_loopback(host: str) -> bool:
    """True when binding to ``host`` reaches this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


@app.callback(invoke_without_command=True)
def serve(
    ctx: typer.Context,
    host: str | None = typer.Option(
        None, "--host", help="Bind address (default: settings api_host)."
    ),
    port: int | None = typer.Option(
        None, "--port", min=1, max=65535, help="Port (default: settings api_port)."
    ),
    insecure: bool = typer.Option(
        False,
        "--insecure",
        help="Serve a non-loopback address without auth (anyone who can reach it may "
        "read, change and delete everything).",
    ),
) -> None:
    """Serve the API and the dashboard (at /) until interrupted. OpenAPI docs at /docs."""
    settings = settings_of(ctx)
    bind = host or settings.api_host
    if not settings.require_auth and not is_loopback(bind):
        if not insecure:
            raise fail(
                ctx,
                f"refusing to serve {bind} without auth: set require_auth "
                "(HWNAS_REQUIRE_AUTH=true) and create tokens with `hwnas token create`, "
                "or pass --insecure to accept that anyone reaching it has full access",
                2,
            )
        typer.secho(
            f"warning: serving {bind} WITHOUT auth (--insecure): anyone who can reach this "
            "port can read, change and delete everything",
            fg=typer.colors.YELLOW,
            err=True,
        )
    import uvicorn

    from service.api import create_app

    with open_runtime(ctx) as rt:
        app_ = create_app(rt)
        uvicorn.run(app_, host=bind, port=port or rt.settings.api_port, log_level="info")
