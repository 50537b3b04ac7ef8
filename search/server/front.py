"""The server's front door: plain ASGI middleware that answers what needs no routing before FastAPI does
any work, so that a flood of model-bound requests costs the event loop as little as possible.

- ``FrontDoor``: ``GET /api/health`` is answered here, and a request to an admitted route
  (``medsearch.server.admission.admitted_routes``) whose gate is full gets its 503 (``Retry-After``, the
  API's error shape) here. A request without the token a server requires is passed on, to get its 401
  from the route as before.
- ``SecurityHeaders``: the headers every answer carries, set as the answer starts (no task per request,
  as a ``@app.middleware("http")`` function would cost).
"""

from __future__ import annotations

from collections.abc import Mapping

from medsearch.server.admission import Gate
from medsearch.server.errors import busy_response
from medsearch.server.security import token_ok
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEALTH_PATH = "/api/health"
HEALTH = {"status": "ok"}
"""What ``GET /api/health`` answers (``medsearch.server.routes_meta.health`` documents it)."""
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class FrontDoor:
    """Answers health, and refuses requests to full gates (``gates``: the app's, by kind; ``admitted``: the
    kind of each admitted ``(method, path)``)."""

    def __init__(self, app: ASGIApp, gates: Mapping[str, Gate], admitted: Mapping[tuple[str, str], str],
                 api_token: str | None = None) -> None:
        self.app, self.gates, self.admitted, self.api_token = app, gates, admitted, api_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            method, path = scope["method"], scope["path"]
            if method == "GET" and path == HEALTH_PATH:
                await JSONResponse(HEALTH)(scope, receive, send)
                return
            kind = self.admitted.get((method, path))
            gate = self.gates.get(kind) if kind else None
            if gate is not None and gate.full() and self._token_ok(scope):
                await busy_response(gate.refusal())(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _token_ok(self, scope: Scope) -> bool:
        return not self.api_token or token_ok(Headers(scope=scope).get("authorization", ""), self.api_token)


class SecurityHeaders:
    """Adds ``SECURITY_HEADERS`` to every HTTP answer that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
