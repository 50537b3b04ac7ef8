"""One JSON error shape for every failure, the CLI's: ``{"error": {"code", "message"[, "position"]}}``.
The library's errors map to HTTP statuses by type; FastAPI's validation errors (422) and unknown routes
(404) are reshaped the same way; anything unexpected is a 500 with no details (they go to the log)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from medsearch.errors import (
    Busy,
    InvalidQuery,
    MedsearchError,
    ModelMismatch,
    ModelUnavailable,
    NotFound,
    StoreError,
    StoreLocked,
    UnreadableFile,
    error_payload,
)
from medsearch.indexer.dicomweb.source import SourceError
from medsearch.server.security import Forbidden, PayloadTooLarge, Unauthorized
from starlette.exceptions import HTTPException

log = logging.getLogger("medsearch.server")

STATUS: tuple[tuple[type[MedsearchError], int], ...] = (
    (Busy, 503),  # with Retry-After
    (InvalidQuery, 400),
    (UnreadableFile, 415),
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (PayloadTooLarge, 413),
    (ModelMismatch, 409),
    (ModelUnavailable, 503),
    (StoreLocked, 503),
    (StoreError, 503),
    (SourceError, 502),  # a DICOMweb server behind a thumbnail failed
)
"""First match wins (subclasses before their bases); any other MedsearchError is a 500."""

HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 413: "payload_too_large"}


def status_of(error: MedsearchError) -> int:
    return next((status for kind, status in STATUS if isinstance(error, kind)), 500)


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def busy_response(error: Busy) -> JSONResponse:
    """503 with ``Retry-After``: the answer to a request refused by admission control."""
    return JSONResponse(error_payload(error), status_code=503, headers={"Retry-After": str(error.retry_after_s)})


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(MedsearchError)
    async def medsearch_error(_request: Request, error: MedsearchError) -> JSONResponse:
        if isinstance(error, Busy):
            return busy_response(error)
        status = status_of(error)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(error_payload(error), status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in error.errors()
        )
        return error_response(422, "invalid_request", problems or "invalid request")

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, error: HTTPException) -> JSONResponse:
        code = HTTP_CODES.get(error.status_code, "http_error")
        message = "No such route." if error.status_code == 404 else str(error.detail)
        return error_response(error.status_code, code, message)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, error: Exception) -> JSONResponse:
        log.error("unexpected %s while serving a request", type(error).__name__, exc_info=error)
        return error_response(500, "internal_error", "Internal error; see the server log.")
