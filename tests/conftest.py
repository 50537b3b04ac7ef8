"""Shared fixtures: tiny SigLIP models saved with save_pretrained and loaded through the same code path as
MedSigLIP-448, folders of real images written by the tests, and real DICOM files from pydicom's wheel."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.components import require
from tests.tiny_siglip import build_tiny_siglip, train_tiny_siglip

REAL_DICOMS = ("CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "rtplan.dcm")


LONG_FIRST = ("tests/indexer/test_ray_netns.py", "tests/indexer/test_dicomweb_netns.py",
              "tests/reports/test_reports_dicomweb.py")
"""Modules of nested runs (minutes each): collected first, so that the suite's parallel workers
(``pytest -n``) start them at once instead of finishing on them."""


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``pytest -n auto``: one worker more than the cores this process may use, since a good part of the
    suite waits on the processes and servers it starts (CLI runs, kills, PostgreSQL, Chromium, Orthanc)."""
    import os

    return len(os.sched_getaffinity(0)) + 1


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move the ``LONG_FIRST`` modules' tests to the front, keeping every other test's order."""
    items.sort(key=lambda item: not item.nodeid.startswith(LONG_FIRST))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Each ``pytest.mark.needs("component", ...)``: skip the test without the component, fail it under CI."""
    for mark in item.iter_markers("needs"):
        for name in mark.args:
            require(name)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight tiny SigLIP folder (seeded)."""
    return build_tiny_siglip(tmp_path_factory.mktemp("tiny-model"), seed=0)


COMMITTED_MODELS = Path(__file__).parent / "data" / "models"
"""The tiny trained models as the training code makes them (bit for bit on every run here:
``test_training_is_deterministic`` trains the ``trained`` one again and compares; ``explain`` is the same
code with patches of 4), keyed like the cache below: the suite copies
them instead of training. A change to ``tests/tiny_siglip.py`` changes the key, and the suite trains again
until they are refreshed: run it once with ``MEDSEARCH_TEST_MODEL_CACHE=tests/data/models``, then delete the
folders of the old key."""


def reuse_trained(name: str, out_dir: Path, train: Callable[[Path], Path]) -> Path:
    """A copy of the model ``train`` makes: the committed one (``COMMITTED_MODELS``) of the current training
    code (keyed by the hash of ``tests/tiny_siglip.py``); else, when ``MEDSEARCH_TEST_MODEL_CACHE`` names a
    folder (developers' repeated runs; ``.ci/run`` sets it to a folder of the checkout, so that the session's
    workers and its nested runs train once), the one the same code made there (``_trained_once``); else
    ``train(out_dir)``."""
    import hashlib
    import os

    key = f"{name}-{hashlib.sha256((Path(__file__).parent / 'tiny_siglip.py').read_bytes()).hexdigest()[:16]}"
    cache = os.environ.get("MEDSEARCH_TEST_MODEL_CACHE")
    if (COMMITTED_MODELS / key / "config.json").exists():
        kept = COMMITTED_MODELS / key
    elif cache:
        kept = _trained_once(Path(cache) / key, train)
    else:
        return train(out_dir)
    shutil.copytree(kept, out_dir, dirs_exist_ok=True)
    return out_dir


def _trained_once(kept: Path, train: Callable[[Path], Path]) -> Path:
    """``kept``, trained there unless it was before; a lock file beside it makes the other processes wait
    while one trains."""
    import fcntl
    import os

    kept.parent.mkdir(parents=True, exist_ok=True)
    with open(kept.parent / f".{kept.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (kept / "config.json").exists():
            partial = kept.parent / f".{kept.name}-{os.getpid()}"
            shutil.rmtree(partial, ignore_errors=True)
            train(partial)
            partial.rename(kept)
    return kept


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SigLIP trained for a few seconds on drawn shapes with captions."""
    return reuse_trained("trained", tmp_path_factory.mktemp("trained-model"),
                         lambda out: train_tiny_siglip(out, seed=0))


@pytest.fixture(scope="session")
def tiny_embedder(tiny_model: Path) -> Any:
    from medsearch.indexer.model_loading import load_embedder

    return load_embedder(str(tiny_model), device="cpu")


def pydicom_file(name: str) -> Path:
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name)
    assert path is not None, name
    return Path(path)


def write_png(path: Path, seed: int, size: tuple[int, int] = (40, 30), sixteen_bit: bool = False) -> Path:
    """A random-pattern PNG (8-bit RGB or 16-bit grey) unlike any other seed's."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    if sixteen_bit:
        Image.fromarray(rng.integers(0, 65535, size[::-1], dtype=np.uint16)).save(path)
    else:
        Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Six written raster images (PNG, JPEG, TIFF, 16-bit PNG) and three real DICOMs plus an RT plan."""
    folder = tmp_path / "images"
    for seed in range(3):
        write_png(folder / f"png/case{seed:03d}.png", seed)
    Image.open(write_png(folder / "tmp.png", 10)).convert("RGB").save(folder / "photo.jpg", quality=90)
    (folder / "tmp.png").unlink()
    Image.fromarray(np.random.default_rng(11).integers(0, 255, (50, 20), dtype=np.uint8)).save(folder / "scan.tiff")
    write_png(folder / "deep/grey16.png", 12, sixteen_bit=True)
    for name in REAL_DICOMS:
        target = folder / "dicom" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(pydicom_file(name), target)
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """Run the real CLI in-process: ``cli("search", "x", "--json")`` -> parsed JSON (or the result)."""
    from medsearch.cli import app

    monkeypatch.delenv("MEDSEARCH_STORE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    runner = CliRunner()

    def run(*args: str, expect: int = 0) -> Any:
        result = runner.invoke(app, [str(a) for a in args])
        assert result.exit_code == expect, (result.exit_code, result.output, result.exception)
        if "--json" in args:
            return json.loads(result.stdout)
        return result

    return run


@pytest.fixture(scope="session")
def postgres_url() -> Any:
    """A real PostgreSQL server on a private socket directory, started for the session (Debian's
    postgresql package; skipped where it is not installed, failed under CI)."""
    import glob
    import os
    import subprocess

    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not binaries:
        require("postgresql")
    bin_dir = Path(binaries[-1]).parent
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="medsearch-pg-"))  # pytest's own temp folders are closed to postgres
    data, socket_dir = root / "data", root / "socket"
    socket_dir.mkdir()
    os.chmod(root, 0o777)
    os.chmod(socket_dir, 0o777)
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*as_postgres, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True)
    options = f"-k {socket_dir} -c listen_addresses='' -c fsync=off"
    subprocess.run([*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l",
                    str(root / "log"), "-w", "start"], check=True, capture_output=True)
    subprocess.run([*as_postgres, str(bin_dir / "createdb"), "-h", str(socket_dir), "-U", "postgres", "medsearch"],
                   check=True, capture_output=True)
    yield f"postgresql+psycopg://postgres@/medsearch?host={socket_dir}"
    subprocess.run([*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                   capture_output=True)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def flat_store(tmp_path: Path, tiny_embedder: Any) -> Path:
    """A store of 12 PNGs with a flat index and its snapshot (the reindex crash tests)."""
    from medsearch.api import Medsearch
    from medsearch.indexer.pipeline import IndexSettings

    folder, store = tmp_path / "images", tmp_path / "store"
    for seed in range(12):
        write_png(folder / f"img{seed:03d}.png", seed)
    with Medsearch.open(store, create=True, writable=True, embedder=tiny_embedder) as engine:
        engine.index([folder], IndexSettings(batch_size=4, workers=0))
    return store
