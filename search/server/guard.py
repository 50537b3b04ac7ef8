"""The request guard, run before routing on every HTTP request (an ASGI middleware).

- Host: only the names the server is reached by on this machine (127.0.0.1, localhost, [::1]), the address
  the connection arrived at (the bind address) and ``ServerSettings.allowed_hosts``. A DNS-rebinding page
  sends its own name as Host and is refused, so it cannot read results even with no token set.
- POST bodies: only the types a JSON client, a form upload or a raw upload sends. ``text/plain`` and
  ``application/x-www-form-urlencoded`` (which a browser posts cross-site without asking first) and a
  body without a type are refused (an empty POST carries nothing, and gets the route's own answer).
- The API's docs (``/docs``, ``/redoc``, ``/openapi.json``) need the token like every route but health.
"""

from __future__ import annotations

from typing import Any

from medsearch.server.security import TOKEN_NEEDED, token_ok
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
BODY_TYPES = ("application/json", "multipart/form-data", "application/octet-stream", "application/dicom",
              "text/csv")  # text/csv (report imports) is not a CORS-simple type: it needs a preflight
DOC_PATHS = ("/docs", "/redoc", "/openapi.json")


def host_name(host: str) -> str:
    """The name part of a Host header value, lower case: ``[::1]:8000`` -> ``::1``, ``a.b:80`` -> ``a.b``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def body_type_ok(content_type: str) -> bool:
    kind = content_type.partition(";")[0].strip().lower()
    return kind in BODY_TYPES or kind.startswith("image/")


def _has_body(headers: Headers) -> bool:
    return headers.get("content-length", "0") != "0" or "transfer-encoding" in headers


class RequestGuard:
    """Wraps the app; answers 400 (bad Host), 415 (POST body type) or 401 (docs without the token) in the
    API's error shape."""

    def __init__(self, app: ASGIApp, allowed_hosts: tuple[str, ...] = (), api_token: str | None = None) -> None:
        self.app = app
        self.allowed = {*LOOPBACK_NAMES, *(host_name(h) for h in allowed_hosts)}
        self.api_token = api_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = self.refusal(scope) if scope["type"] == "http" else None
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, code, message = refusal
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        await JSONResponse({"error": {"code": code, "message": message}}, status, headers)(scope, receive, send)

    def refusal(self, scope: Scope) -> tuple[int, str, str] | None:
        headers = Headers(scope=scope)
        server: Any = scope.get("server") or ("",)
        if host_name(headers.get("host", "")) not in self.allowed | {str(server[0]).lower()}:
            return 400, "invalid_host", ("This server does not answer to that Host name; add it to "
                                         "MEDSEARCH_ALLOWED_HOSTS to allow it.")
        if scope["method"] == "POST" and _has_body(headers) and not body_type_ok(headers.get("content-type", "")):
            return 415, "unsupported_media_type", ("Send JSON (application/json), a form (multipart/form-data) "
                                                   "or the image itself (application/octet-stream).")
        if scope["path"].rstrip("/") in DOC_PATHS and not token_ok(headers.get("authorization", ""),
                                                                   self.api_token):
            return 401, "unauthorized", TOKEN_NEEDED
        return None
