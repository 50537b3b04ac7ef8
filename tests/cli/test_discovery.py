"""A running server is found, not named: ``medsearch serve`` (a real process) records itself in the store
folder, and ``search``, ``search --count`` and ``similar`` in fresh CLI processes ask it with the same output,
importing neither torch nor numpy nor SQLAlchemy; ``--local``/``MEDSEARCH_LOCAL`` answer here; the record goes
when the server stops, and a stale one is ignored and removed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api_fixtures import free_port
from tests.cli.test_no_model import loaded_modules
from tests.cli.test_no_model import store as store

HEAVY = {"torch", "transformers", "numpy", "sqlalchemy"}  # (pydantic: typer 0.29 coerces every option with it)


def _wait_for(condition: Any, deadline_s: float, what: str) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@pytest.fixture
def served(store: Path) -> Iterator[dict[str, Any]]:
    """``medsearch serve`` on the store, as a user starts it; stopped with SIGTERM."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("MEDSEARCH_API_TOKEN", None)
    server = subprocess.Popen([sys.executable, "-m", "medsearch.cli", "serve", "--store", str(store), "--port",
                               str(free_port())], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    record = store / "server.json"
    try:
        _wait_for(lambda: record.exists() or server.poll() is not None, 300, "the server did not record itself")
        assert server.poll() is None, server.stderr.read() if server.stderr else ""
        yield {"store": store, "record": record, "process": server}
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=120)


def test_search_count_and_similar_ask_the_running_server(served: dict[str, Any]) -> None:
    store = str(served["store"])
    assert json.loads(served["record"].read_text())["pid"] == served["process"].pid
    for args in (["search", "a discovered shape", "-k", "3", "--json"],
                 ["search", "a discovered shape", "--min-prob", "1e-9", "--count"],
                 ["similar", "2", "-k", "3", "--json"]):
        code, remote, loaded = loaded_modules(*args, "--store", store)
        assert code == 0 and not HEAVY & set(loaded), (args, loaded)  # an uncached text, yet no model here
        code, local, loaded = loaded_modules(*args, "--store", store, "--local")
        assert code == 0 and "numpy" in loaded
        if "--json" in args:
            mine, theirs = json.loads(local), json.loads(remote)
            rows = mine.get("results", mine) if isinstance(mine, dict) else mine
            their_rows = theirs.get("results", theirs) if isinstance(theirs, dict) else theirs
            assert [r["id"] for r in their_rows] == [r["id"] for r in rows] and rows
            for a, b in zip(rows, their_rows, strict=True):
                assert a["score"] == pytest.approx(b["score"], abs=1e-5)
        else:
            assert remote == local
    code, _out, loaded = loaded_modules("search", "another new shape", "--store", store,
                                        env={"MEDSEARCH_LOCAL": "1"})
    assert code == 0 and "torch" in loaded  # discovery off: this process embeds the new text


def test_the_record_goes_with_the_server(served: dict[str, Any]) -> None:
    served["process"].send_signal(signal.SIGTERM)
    served["process"].wait(timeout=120)
    assert not served["record"].exists()


@pytest.mark.parametrize("stale", ["dead pid", "no answer"])
def test_a_stale_record_is_ignored_and_removed(store: Path, stale: str) -> None:
    if stale == "dead pid":
        ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                               text=True, check=True)
        pid, url = int(ended.stdout), "http://127.0.0.1:9"
    else:
        pid, url = os.getpid(), f"http://127.0.0.1:{free_port()}"  # alive, but nothing listens there
    record = store / "server.json"
    record.write_text(json.dumps({"url": url, "pid": pid, "host": os.uname().nodename, "token": False}))
    code, out, _loaded = loaded_modules("similar", "1", "-k", "2", "--json", "--store", str(store))
    assert code == 0 and json.loads(out)
    assert not record.exists()
