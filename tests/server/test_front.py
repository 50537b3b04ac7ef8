"""The server's front door (``medsearch.server.front``): a request to a full admission gate is refused
before the app behind does any work for it, ``/api/health`` is answered without routing, and a request
without the token a server requires still gets its 401 (a refusal does not tell it the server is busy).
Real uvicorn servers on loopback, and the real app with its gates filled through their own API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from medsearch.server.admission import LIMITS, gates
from medsearch.server.app import create_app
from medsearch.server.deps import ServerSettings
from medsearch.server.front import FrontDoor
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.api_fixtures import index_store, make_images, running_server
from tests.conftest import write_png

ADMITTED = {("GET", "/api/explain"): "explain", ("POST", "/api/similar"): "upload",
            ("POST", "/api/reports"): "upload"}
"""The server's model-bound routes and their kinds (``admitted_routes`` must find each in the app)."""


def _recording_app(reached: list[str]) -> Starlette:
    """An app that answers every admitted route and health with 'behind', noting each request it gets."""

    async def behind(request: Request) -> PlainTextResponse:
        reached.append(f"{request.method} {request.url.path}")
        return PlainTextResponse("behind")

    paths = {path for _method, path in ADMITTED} | {"/api/health"}
    return Starlette(routes=[Route(path, behind, methods=["GET", "POST"]) for path in sorted(paths)])


def _fill(gate: Any) -> None:
    for _ in range(gate.limit):
        gate.enter()


def test_the_door_refuses_a_full_gate_and_answers_health_before_the_app_behind() -> None:
    reached: list[str] = []
    kinds = gates()
    _fill(kinds["explain"])
    with running_server(FrontDoor(_recording_app(reached), kinds, ADMITTED)) as base:
        refused = httpx.get(f"{base}/api/explain", params={"id": 1, "text": "a scan"}, timeout=30)
        health = httpx.get(f"{base}/api/health", timeout=30)
        other_kind = httpx.post(f"{base}/api/similar", content=b"x", timeout=30)  # its gate has room
        assert reached == ["POST /api/similar"], reached
        kinds["explain"].leave()
        admitted = httpx.get(f"{base}/api/explain", params={"id": 1, "text": "a scan"}, timeout=30)
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "2", refused.text
    assert refused.json()["error"]["code"] == "busy" and kinds["explain"].refused == 1
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert other_kind.text == "behind" and admitted.text == "behind"
    assert reached == ["POST /api/similar", "GET /api/explain"]


def test_without_the_token_a_full_gate_is_not_told_the_request_goes_on_to_its_401() -> None:
    reached: list[str] = []
    kinds = gates()
    _fill(kinds["explain"])
    with running_server(FrontDoor(_recording_app(reached), kinds, ADMITTED, api_token="s3cret")) as base:
        anonymous = httpx.get(f"{base}/api/explain", params={"id": 1}, timeout=30)
        wrong = httpx.get(f"{base}/api/explain", params={"id": 1}, headers={"Authorization": "Bearer no"},
                          timeout=30)
        right = httpx.get(f"{base}/api/explain", params={"id": 1}, headers={"Authorization": "Bearer s3cret"},
                          timeout=30)
    assert anonymous.text == "behind" and wrong.text == "behind" and reached == ["GET /api/explain"] * 2
    assert right.status_code == 503 and right.json()["error"]["code"] == "busy"


def test_the_served_app_refuses_each_admitted_route_at_a_full_gate_and_answers_health(
        tmp_path: Path, tiny_embedder: Any) -> None:
    store = tmp_path / "store"
    index_store(store, make_images(tmp_path / "images", range(1, 3)), tiny_embedder)
    write_png(tmp_path / "query.png", 7)
    app = create_app(store, embedder=tiny_embedder, settings=ServerSettings())
    door = next(middleware for middleware in app.user_middleware if middleware.cls is FrontDoor)
    assert door.kwargs["admitted"] == ADMITTED  # read from each route's admit(kind), its router's too
    with running_server(app) as base:
        for gate in app.state.gates.values():
            _fill(gate)
        answers = {(method, path): httpx.request(method, base + path, params={"id": 1, "text": "a scan"},
                                                 files={"file": ("q.png", (tmp_path / "query.png").read_bytes())}
                                                 if method == "POST" else None, timeout=60)
                   for method, path in ADMITTED}
        health = httpx.get(f"{base}/api/health", timeout=60)
        for gate in app.state.gates.values():
            for _ in range(gate.limit):
                gate.leave()
        explained = httpx.get(f"{base}/api/explain", params={"id": 1, "text": "a scan", "format": "json"},
                              timeout=120)
    for route, answer in answers.items():
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "2", (route, answer.text)
        assert answer.json()["error"]["code"] == "busy" and answer.headers["X-Frame-Options"] == "DENY", route
    assert sum(gate.refused for gate in app.state.gates.values()) == len(ADMITTED)
    assert set(LIMITS) == set(ADMITTED.values())
    assert health.json() == {"status": "ok"} and health.headers["X-Content-Type-Options"] == "nosniff"
    assert explained.status_code == 200, explained.text
