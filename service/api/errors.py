"""Every error leaves the API as JSON: ``{"error": {"type": ..., "message": ...}}``.

An unexpected exception is a 500 whose message is one short line; the full
traceback goes to the log, and into the answer only for admin callers.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.domain.errors import ConflictError, ForbiddenError, NotFoundError

__all__ = ["ERROR_RESPONSES", "ErrorOut", "install_error_handlers"]

log = logging.getLogger("hwnas.api")


class ErrorDetail(BaseModel):
    type: str
    message: str
    traceback: str | None = None


class ErrorOut(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


#: Statuses any operation may answer with an error body (documented in OpenAPI).
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in (
        (400, "Malformed request"),
        (401, "Missing or unknown token"),
        (403, "Not allowed to this token, or a read-only (bundled) row"),
        (404, "No such thing, or not the caller's"),
        (409, "Conflicts with the current state"),
        (413, "Request body too large"),
        (422, "Invalid input"),
        (500, "Internal error"),
    )
}

_KINDS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
}


def _body(status: int, kind: str, message: str, trace: str | None = None) -> JSONResponse:
    detail: dict[str, str] = {"type": kind, "message": message}
    if trace is not None:
        detail["traceback"] = trace
    return JSONResponse(status_code=status, content={"error": detail})


def _explain(err: dict[str, Any]) -> str:
    """Pydantic's message, or ours where a pattern alone would say too little."""
    pattern = (err.get("ctx") or {}).get("pattern", "")
    if err.get("type") == "string_pattern_mismatch" and "A-Za-z0-9._-" in pattern:
        return (
            "invalid name: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return str(err.get("msg", "invalid"))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(NotFoundError)
    async def _not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return _body(404, "not_found", str(exc))

    @app.exception_handler(ForbiddenError)
    async def _forbidden(_: Request, exc: ForbiddenError) -> JSONResponse:
        return _body(403, "forbidden", str(exc))

    @app.exception_handler(ConflictError)
    async def _conflict(_: Request, exc: ConflictError) -> JSONResponse:
        return _body(409, "conflict", str(exc))

    @app.exception_handler(ValueError)
    async def _invalid(_: Request, exc: ValueError) -> JSONResponse:
        return _body(422, "invalid", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {_explain(err)}" for err in exc.errors()
        )
        # Input echoed back is capped: a message must stay short whatever was sent.
        return _body(422, "invalid", problems[:2000])

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _body(exc.status_code, _KINDS.get(exc.status_code, "error"), str(exc.detail))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        caller = getattr(request.state, "caller", None)
        trace = None
        if caller is not None and caller.is_admin:
            trace = "".join(traceback.format_exception(exc))
        return _body(
            500, "internal", f"internal error ({type(exc).__name__}); see the server log", trace
        )
