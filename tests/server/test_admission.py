"""Admission control under a flood: 200 concurrent heatmap requests against a real server. Past the
explain gate they are refused at once (503, Retry-After, the one error shape), never with a 500, and
``/api/health``, ``/api/info`` and a search whose text is cached keep answering meanwhile. The flood's
figures are printed (``-s``); the bounds asserted are loose, for a busy machine."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from medsearch.errors import Busy
from medsearch.server.admission import Gate
from medsearch.server.app import create_app
from medsearch.server.deps import ServerSettings

from tests.api_fixtures import index_store, make_images, running_server

FLOOD = 200


def test_a_gate_admits_its_limit_and_refuses_the_rest() -> None:
    gate = Gate("explain", 2, retry_after_s=3)
    gate.enter()
    gate.enter()
    with pytest.raises(Busy) as refused:
        gate.enter()
    assert refused.value.retry_after_s == 3 and "busy" in str(refused.value) and gate.refused == 1
    gate.leave()
    gate.enter()  # a place freed is taken again


def test_health_info_and_cached_searches_answer_under_a_flood_of_heatmaps(tmp_path: Path,
                                                                          tiny_embedder: Any) -> None:
    store = tmp_path / "store"
    index_store(store, make_images(tmp_path / "images", range(6)), tiny_embedder)
    app = create_app(store, embedder=tiny_embedder, settings=ServerSettings())
    with running_server(app) as base:
        assert httpx.get(f"{base}/api/search", params={"q": "a scan"}, timeout=60).status_code == 200  # cached now
        statuses: list[int] = []
        started = threading.Event()

        def explain(n: int) -> None:
            started.set()
            with httpx.Client(timeout=300) as http:
                answer = http.get(f"{base}/api/explain", params={"id": 1 + n % 6, "text": f"shape {n % 5}",
                                                                 "format": "json"})
                statuses.append(answer.status_code)
                if answer.status_code == 503:
                    assert answer.headers["Retry-After"] == "2" and answer.json()["error"]["code"] == "busy"

        with ThreadPoolExecutor(64) as pool:
            flood = [pool.submit(explain, n) for n in range(FLOOD)]
            started.wait(60)
            waits = {"health": [], "info": [], "cached search": []}
            for _round in range(5):
                for name, path, params in (("health", "/api/health", {}), ("info", "/api/info", {}),
                                           ("cached search", "/api/search", {"q": "a scan"})):
                    asked = time.perf_counter()
                    answer = httpx.get(base + path, params=params, timeout=60)
                    waits[name].append(time.perf_counter() - asked)
                    assert answer.status_code == 200, (name, answer.text)
            for done in flood:
                done.result()
    refused, served = statuses.count(503), statuses.count(200)
    print(f"\n{FLOOD} concurrent explains: {served} served, {refused} refused (503); slowest answer while "
          + ", ".join(f"{name} {max(times):.3f} s" for name, times in waits.items()))
    assert sorted(set(statuses)) <= [200, 503] and served >= 1 and refused >= 1, statuses
    assert max(waits["health"]) < 5.0 and max(waits["info"]) < 10.0, waits
