"""Admission control: model-bound work (heatmaps, uploads, the embedding of texts not yet cached) waits
in a bounded queue per kind, and past it is refused at once with 503 and ``Retry-After`` (``Busy``), so
that it never holds the server's threads: ``/api/health``, ``/api/info`` and queries whose texts are cached
answer whatever the model is doing. A refusal is decided on the event loop, before a thread is taken."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Request
from medsearch.errors import Busy

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

    def enter(self) -> None:
        with self._lock:
            if self.inside >= self.limit:
                self.refused += 1
                raise Busy(f"the server is busy with {self.limit} {self.kind} requests; try again in "
                           f"{self.retry_after_s} s", self.retry_after_s)
            self.inside += 1

    def leave(self) -> None:
        with self._lock:
            self.inside -= 1


def gates() -> dict[str, Gate]:
    """One gate per kind of model-bound route, with the ``LIMITS``."""
    return {kind: Gate(kind, limit) for kind, limit in LIMITS.items()}


def admit(kind: str) -> Callable[..., Any]:
    """A route dependency: the request passes ``kind``'s gate (on the event loop) or gets 503."""

    async def dependency(request: Request) -> AsyncIterator[None]:
        gate: Gate = request.app.state.gates[kind]
        gate.enter()
        try:
            yield
        finally:
            gate.leave()

    return dependency
