"""Admission control: model-bound work (heatmaps, uploads, the embedding of texts not yet cached) waits
in a bounded queue per kind, and past it is refused at once with 503 and ``Retry-After`` (``Busy``), so
that it never holds the server's threads: ``/api/health``, ``/api/info`` and queries whose texts are cached
answer whatever the model is doing.

A route declares its kind with ``Depends(admit(kind))``, which takes a place in the kind's gate for the
request's lifetime. The front door (``medsearch.server.front``) reads those routes from the app
(``admitted_routes``) and refuses a request to a full gate before FastAPI does any work for it; the
dependency still decides for the requests that pass the door together while the last place is taken."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from medsearch.errors import Busy
from starlette.routing import BaseRoute

LIMITS = {"explain": 4, "upload": 4}
"""Requests of each kind admitted at once (running or waiting for the model); the rest get 503."""
RETRY_AFTER_S = 2


class Gate:
    """At most ``limit`` requests of ``kind`` inside at once; ``enter`` raises Busy past that."""

    def __init__(self, kind: str, limit: int, retry_after_s: int = RETRY_AFTER_S) -> None:
        self.kind, self.limit, self.retry_after_s = kind, limit, retry_after_s
        self.inside = 0
        self.refused = 0
        self._lock = threading.Lock()

    def full(self) -> bool:
        """Whether ``enter`` would refuse now (a hint: a place may be taken or freed just after)."""
        return self.inside >= self.limit

    def refusal(self) -> Busy:
        """The Busy error for one request refused (counted in ``refused``)."""
        self.refused += 1
        return Busy(f"the server is busy with {self.limit} {self.kind} requests; try again in "
                    f"{self.retry_after_s} s", self.retry_after_s)

    def enter(self) -> None:
        """Take a place. Raises Busy when all ``limit`` places are taken."""
        with self._lock:
            if self.inside >= self.limit:
                raise self.refusal()
            self.inside += 1

    def leave(self) -> None:
        with self._lock:
            self.inside -= 1


def gates() -> dict[str, Gate]:
    """One gate per kind of model-bound route, with the ``LIMITS``."""
    return {kind: Gate(kind, limit) for kind, limit in LIMITS.items()}


def admit(kind: str) -> Callable[..., Any]:
    """A route dependency: the request passes ``kind``'s gate (on the event loop) or gets 503 (Busy)."""

    async def dependency(request: Request) -> AsyncIterator[None]:
        gate: Gate = request.app.state.gates[kind]
        gate.enter()
        try:
            yield
        finally:
            gate.leave()

    dependency.admission_kind = kind  # type: ignore[attr-defined]  # read by admitted_routes
    return dependency


def admitted_routes(routes: Iterable[BaseRoute]) -> dict[tuple[str, str], str]:
    """``(method, path) -> kind`` of the ``routes`` (its routers', as ``APIRouter.routes`` lists them) that
    depend on ``admit(kind)``, on their own or through their router."""
    found = {}
    for route in routes:
        if isinstance(route, APIRoute):
            for depends in route.dependencies:
                kind = getattr(depends.dependency, "admission_kind", None)
                if kind is not None:
                    found.update({(method, route.path): kind for method in route.methods or ()})
    return found
