"""No model when none is needed: a cached text, an image id, ``upgrade`` of a current store, ``timeline``
of an image without a patient and any validation error are answered by a fresh CLI process that never
imports torch or transformers, while the model check stays honest (the store's model record against the
model's files) and an older store without a recorded calibration loads the model as before."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_png

HEAVY = ("torch", "transformers")
PROBE = ("import atexit, runpy, sys\n"
         "atexit.register(lambda: print('HEAVY=' + ','.join(m for m in ('torch', 'transformers') "
         "if m in sys.modules), 'LOADED=' + ','.join(m for m in ('numpy', 'pydantic', 'httpx', 'sqlalchemy') "
         "if m in sys.modules), file=sys.stderr))\n"
         "sys.argv = ['medsearch', *sys.argv[1:]]\n"
         "runpy.run_module('medsearch.cli', run_name='__main__')\n")


def medsearch(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, bool]:
    """(exit code, stdout, whether torch or transformers was imported) of a fresh CLI process."""
    code, out, loaded = loaded_modules(*args, env=env)
    return code, out, any(name in HEAVY for name in loaded)


def loaded_modules(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, list[str]]:
    """(exit code, stdout, which of torch, transformers, numpy, pydantic, httpx, sqlalchemy a fresh CLI
    process imported)."""
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    environment.pop("MEDSEARCH_SERVER", None)
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=600,
                          env=environment)
    line = [line for line in done.stderr.splitlines() if line.startswith("HEAVY=")]
    assert line, done.stderr
    heavy, loaded = line[-1].removeprefix("HEAVY=").split(" LOADED=")
    return done.returncode, done.stdout, [name for name in (heavy + "," + loaded).split(",") if name]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    """A store of six PNGs indexed with the tiny model folder (its record names the folder)."""
    from medsearch.api import Medsearch
    from medsearch.indexer.pipeline import IndexSettings

    base = tmp_path_factory.mktemp("no-model")
    for seed in range(6):
        write_png(base / "images" / f"img{seed}.png", seed)
    with Medsearch.open(base / "store", model=str(tiny_model), create=True, writable=True) as engine:
        engine.index([base / "images"], IndexSettings(workers=0))
    return base / "store"


def _calibration(store: Path) -> Any:
    with sqlite3.connect(store / "medsearch.db") as db:
        return db.execute("select logit_scale, logit_bias from store_info").fetchone()


def test_a_cached_text_needs_no_model(store: Path) -> None:
    code, first, heavy = medsearch("search", "a bright shape", "--store", str(store), "--json")
    assert code == 0 and heavy  # not cached yet: the model embeds it, and its calibration is recorded
    assert None not in _calibration(store)
    code, again, heavy = medsearch("search", "a bright shape", "--store", str(store), "--json")
    assert code == 0 and not heavy
    assert json.loads(again) == json.loads(first)  # the same scores and probabilities
    code, counted, heavy = medsearch("search", "a bright shape", "--min-prob", "1e-9", "--count", "--store",
                                     str(store))
    assert (code, counted.strip(), heavy) == (0, "6", False)


@pytest.mark.parametrize(("args", "expected"), [
    (["similar", "1", "-k", "2"], 0),
    (["search", "id:2", "-k", "2"], 0),
    (["search", "a bright shape", "-k", "0"], 2),
    (["search", "a bright shape", "--where", "site = ("], 2),
    (["upgrade"], 0),
    (["timeline", "1"], 2),  # a PNG has no patient
])
def test_no_model_for_ids_validation_upgrade_and_timeline(store: Path, args: list[str], expected: int) -> None:
    code, out, heavy = medsearch(*args, "--store", str(store))
    assert (code, heavy) == (expected, False), out
    if args[0] == "upgrade":
        assert "nothing to upgrade" in out


def test_the_model_check_stays_honest(store: Path, tiny_model: Path, tmp_path: Path) -> None:
    medsearch("search", "a dark shape", "--store", str(store))  # cached, and the calibration recorded
    other = tmp_path / "retrained"
    shutil.copytree(tiny_model, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "note": "retrained"}))
    code, _out, heavy = medsearch("search", "a dark shape", "--store", str(store), "--model", str(other))
    assert code == 4 and not heavy  # another revision, told apart by its files
    copy = tmp_path / "copy"
    shutil.copytree(store, copy)
    with sqlite3.connect(copy / "medsearch.db") as db:
        db.execute("update store_info set model_revision = 'sha256:older'")
    code, _out, heavy = medsearch("search", "a dark shape", "--store", str(copy))
    assert code == 4 and not heavy


def test_an_older_store_without_calibration_loads_the_model_once(store: Path, tmp_path: Path) -> None:
    medsearch("search", "a round shape", "--store", str(store))
    copy = tmp_path / "older"
    shutil.copytree(store, copy)
    with sqlite3.connect(copy / "medsearch.db") as db:
        db.execute("update store_info set logit_scale = null, logit_bias = null")
    code, _out, heavy = medsearch("search", "a round shape", "--store", str(copy))
    assert code == 0 and heavy
    code, _out, heavy = medsearch("search", "a round shape", "--store", str(copy))
    assert code == 0 and not heavy
