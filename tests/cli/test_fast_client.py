"""The fast client (``medsearch.cli.fast``): with a ``medsearch serve`` running for the store, ``search``,
``search --count`` and ``similar ID`` in a fresh process print byte for byte what the typer CLI prints
(stdout, stderr, exit code) without importing typer, click, pydantic, rich (for JSON), httpx or the model's
libraries; everything it does not take goes to the full CLI unchanged."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from medsearch.cli.fast import Unhandled, parse

from tests.api_fixtures import free_port
from tests.conftest import write_png

FAST = ("import atexit, runpy, sys\n"
        "atexit.register(lambda: print('MODULES=' + ','.join(sorted(sys.modules)), file=sys.stderr))\n"
        "sys.argv = ['medsearch', *sys.argv[1:]]\n"
        "runpy.run_module('medsearch.cli', run_name='__main__')\n")
"""``python -m medsearch.cli ARGS`` (the console script's start), printing its modules at exit."""
FULL = FAST.replace("runpy.run_module('medsearch.cli', run_name='__main__')",
                    "from medsearch.cli.main import app; app(prog_name='medsearch')")
"""The same command through the typer CLI alone."""
NEVER = {"typer", "click", "pydantic", "torch", "transformers", "numpy", "httpx", "sqlalchemy", "faiss"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Iterator[Path]:
    """A store of six PNGs with ``medsearch serve`` running for it (recorded in the store folder)."""
    from medsearch.api import Medsearch
    from medsearch.indexer.pipeline import IndexSettings

    base = tmp_path_factory.mktemp("fast-client")
    for seed in range(6):
        write_png(base / "images" / f"img{seed}.png", seed)
    with Medsearch.open(base / "store", model=str(tiny_model), create=True, writable=True) as engine:
        engine.index([base / "images"], IndexSettings(workers=0))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("MEDSEARCH_API_TOKEN", None)
    server = subprocess.Popen([sys.executable, "-m", "medsearch.cli", "serve", "--store", str(base / "store"),
                               "--port", str(free_port())], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    record, deadline = base / "store" / "server.json", time.monotonic() + 300
    try:
        while not record.exists() and server.poll() is None:
            assert time.monotonic() < deadline, "the server did not record itself"
            time.sleep(0.1)
        assert server.poll() is None, server.stderr.read() if server.stderr else ""
        yield base / "store"
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)


def run(probe: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str, set[str]]:
    """(exit code, stdout, stderr without the module line, modules imported) of a fresh process."""
    environment = {name: value for name, value in os.environ.items()
                   if name not in ("MEDSEARCH_SERVER", "MEDSEARCH_LOCAL", "MEDSEARCH_STORE", "MEDSEARCH_API_TOKEN")}
    environment.update({"HF_HUB_OFFLINE": "1", "COLUMNS": "120", **(env or {})})
    done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=600,
                          env=environment)
    lines = done.stderr.splitlines(keepends=True)
    modules = [line for line in lines if line.startswith("MODULES=")]
    assert modules, done.stderr
    loaded = set(modules[-1].strip().removeprefix("MODULES=").split(","))
    return done.returncode, done.stdout, "".join(line for line in lines if not line.startswith("MODULES=")), loaded


QUERIES = [
    ["search", "a bright shape"],
    ["search", "a bright shape", "--json"],
    ["search", "a dark shape", "-k", "3", "--min-score=-1", "--show-fields", "all"],
    ["search", "a dark shape", "--where", "width > 0", "--where", "height > 0", "--offset", "1", "--json"],
    ["search", "a bright shape", "--like", "a dark shape@0.5", "--unlike", "id:2", "--paths"],
    ["search", "a bright shape", "--min-prob", "1e-9", "--count"],
    ["search", "a bright shape", "--min-prob", "1e-9", "--count", "--json"],
    ["search", "a bright shape", "--group-by", "modality"],
    ["search", "a bright shape", "--unit", "series", "--json"],
    ["search", "the shape", "--unit", "study"],
    ["similar", "2", "-k", "3"],
    ["similar", "2", "--json", "--include-self"],
    ["search", "a bright shape", "-k", "0"],  # refused before the server is asked
    ["search", "a bright shape", "-k", "0", "--json"],
    ["search", "a bright shape", "--where", "no_such_column = 1"],  # refused by the server
    ["search", "a bright shape", "--where", "((", "--json"],
    ["similar", "999999"],  # not found
]


@pytest.mark.parametrize("args", QUERIES, ids=[" ".join(q) for q in QUERIES])
def test_the_fast_client_prints_what_the_typer_cli_prints(served: Path, args: list[str]) -> None:
    fast = run(FAST, *args, "--store", str(served))
    full = run(FULL, *args, "--store", str(served))
    assert fast[:3] == full[:3]
    assert "typer" in full[3]  # the comparison is with the typer CLI
    assert not NEVER & fast[3], NEVER & fast[3]
    if "--json" in args or "--paths" in args or "--count" in args:
        assert "rich" not in {name.split(".")[0] for name in fast[3]}


def test_the_server_can_be_named_and_the_store_given_by_its_variable(served: Path) -> None:
    url = json.loads((served / "server.json").read_text())["url"]
    fast = run(FAST, "search", "a bright shape", "--json", "--server", url, env={"MEDSEARCH_STORE": "/nowhere"})
    assert fast[0] == 0 and not NEVER & fast[3] and json.loads(fast[1])["results"]
    found = run(FAST, "search", "a bright shape", "--json", env={"MEDSEARCH_STORE": str(served)})
    assert found[:3] == fast[:3] and not NEVER & found[3]


@pytest.mark.parametrize("args", [
    ["search", "--help"],
    ["search", "a bright shape", "--bogus"],
    ["search", "a bright shape", "-k", "three"],
    ["search", "a bright shape", "--local", "--json"],
    ["similar", "1.2.3.4"],  # a UID: answered here, not by the server
], ids=["help", "unknown option", "bad int", "local", "uid"])
def test_what_it_does_not_take_goes_to_the_full_cli(served: Path, args: list[str]) -> None:
    fast = run(FAST, *args, "--store", str(served))
    full = run(FULL, *args, "--store", str(served))
    assert "typer" in fast[3]
    assert (fast[0], fast[1]) == (full[0], full[1])


def test_without_a_server_the_full_cli_answers(tmp_path: Path) -> None:
    code, _out, err, loaded = run(FAST, "search", "x", "--store", str(tmp_path / "none"))
    assert code != 0 and err.startswith("error: ") and "typer" in loaded


@pytest.mark.parametrize("argv", [
    ["index", "x"], ["search", "a", "b"], ["search", "a", "-k5"], ["search", "a", "--", "b"], ["search", "-h"],
    ["search", "a", "--json=true"], ["search", "a", "-k"], ["similar"], ["search", "a", "--include-self"],
    ["similar", "2", "--count"], ["search", "a", "--min-score", "x"], ["search", "a", "--no-json"], [],
])
def test_the_reader_leaves_to_click_what_click_would_read_otherwise(argv: list[str]) -> None:
    with pytest.raises(Unhandled):
        parse(argv)


def test_the_reader_takes_the_option_table() -> None:
    kind, values, own = parse(["search", "--k=5", "pneumonia", "--where", "a = 1", "--where=b = 2", "-k", "7",
                               "--min-score", "-0.5", "--unlike", "x@2", "--count", "--json", "--store", "s"])
    assert kind == "search"
    assert values == {"k": 7, "text": "pneumonia", "where": ("a = 1", "b = 2"), "min_score": -0.5, "unlike": ("x@2",)}
    assert (own["count"], own["as_json"], own["store"], own["paths"]) == (True, True, "s", False)
    kind, values, own = parse(["similar", "3", "--include-self", "--unit", "series", "--server", "http://h:1"])
    assert (kind, values, own["server"]) == ("similar", {"target": "3", "include_self": True, "unit": "series"},
                                              "http://h:1")


def test_the_console_script_starts_in_the_fast_client() -> None:
    import tomllib

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["medsearch"] == "medsearch.cli.fast:main"
