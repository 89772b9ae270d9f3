"""``hwnas serve``: the HTTP API."""

from __future__ import annotations

import typer

from service.cli.common import open_runtime

app = typer.Typer(help="Run the HTTP API (FastAPI + uvicorn) over the configured database.")


@app.callback(invoke_without_command=True)
def serve(
    ctx: typer.Context,
    host: str | None = typer.Option(
        None, "--host", help="Bind address (default: settings api_host)."
    ),
    port: int | None = typer.Option(None, "--port", help="Port (default: settings api_port)."),
) -> None:
    """Serve the API until interrupted. OpenAPI docs at /docs."""
    import uvicorn

    from service.api import create_app

    with open_runtime(ctx) as rt:
        app_ = create_app(rt)
        uvicorn.run(
            app_,
            host=host or rt.settings.api_host,
            port=port or rt.settings.api_port,
            log_level="info",
        )
