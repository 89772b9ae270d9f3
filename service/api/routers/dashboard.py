"""The dashboard: one static page at ``/`` and its assets, plus the two small
JSON answers the page needs before it can call the rest of the API.

The assets ship inside the package (``service/api/static``) and reference
nothing outside this server, so the page works on a machine without internet
access. Everything the page shows comes from the public ``/v1`` API, with the
token the user typed in, so a token sees in the page what it may read.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import FileResponse

from service.api.deps import Caller, get_hwnas, reader
from service.runtime import Runtime

__all__ = ["ASSETS", "router"]

router = APIRouter(tags=["dashboard"])

#: The files served under /dashboard/, with their media types. A fixed list, so
#: that no request path is ever joined onto a directory.
ASSETS = {
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
}


def _static(name: str) -> FileResponse:
    path = resources.files("service.api") / "static" / name
    # The package is installed as files (setuptools package-data), so the
    # traversable is a real path.
    return FileResponse(str(path), media_type=ASSETS.get(name, "text/html"))


@router.get("/", include_in_schema=False)
def index() -> FileResponse:
    return _static("index.html")


@router.get("/dashboard/settings.json", include_in_schema=False)
def page_settings(rt: Annotated[Runtime, Depends(get_hwnas)]) -> dict[str, Any]:
    """What the page needs to know before its first API call: whether to ask
    for a token (so that it never provokes a 401 just to find out)."""
    return {"require_auth": rt.settings.require_auth}


@router.get("/dashboard/{asset}", include_in_schema=False)
def asset(asset: str) -> FileResponse:
    if asset not in ASSETS:
        raise HTTPException(404, f"no dashboard asset {asset!r}")
    return _static(asset)


@router.get("/v1/whoami", tags=["auth"])
def whoami(caller: Annotated[Caller, Depends(reader)]) -> dict[str, Any]:
    """The calling token's name and scopes ("local" with every scope when
    auth is off): lets a client tell a read-only token from a writer."""
    return {"name": caller.name, "scopes": list(caller.scopes)}
