"""A command whose optional extra is not installed ends in one line naming the extra, not a traceback.
The import is made to fail in a subprocess (``sys.modules[name] = None``), nothing is uninstalled."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


def run_without(modules: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    """``medsearch ARGS`` in a fresh interpreter where importing each of ``modules`` fails."""
    code = (f"import sys\nfor name in {modules!r}: sys.modules[name] = None\n"
            "from medsearch.cli import app\napp(sys.argv[1:], prog_name='medsearch')")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from medsearch.api import Medsearch

    store = tmp_path_factory.mktemp("extras") / "store"
    Medsearch.open(store, create=True, writable=True).close()
    return store


def assert_one_line(done: subprocess.CompletedProcess[str], extra: str) -> None:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert f'pip install "medsearch[{extra}]"' in done.stderr, done.stderr


def test_serve_without_the_server_extra(empty_store: Path) -> None:
    assert_one_line(run_without(["uvicorn"], "serve", "--store", str(empty_store)), "server")
    assert_one_line(run_without(["fastapi"], "serve", "--store", str(empty_store)), "server")


def test_evaluate_plot_without_matplotlib(empty_store: Path, tmp_path: Path) -> None:
    truth = tmp_path / "truth.csv"
    truth.write_text("path,effusion\nx.png,1\n")
    done = run_without(["matplotlib"], "evaluate", "--truth", str(truth), "--labels", "effusion", "--plot",
                       str(tmp_path / "roc.png"), "--store", str(empty_store))
    assert_one_line(done, "eval")
    assert not (tmp_path / "roc.png").exists()


def test_probe_and_audit_without_the_eval_extra(empty_store: Path, tmp_path: Path) -> None:
    assert_one_line(run_without(["sklearn"], "probe", "train", "x", "--positives", "id:1", "--store",
                                str(empty_store)), "eval")
    assert_one_line(run_without(["matplotlib"], "audit", "--plot", str(tmp_path / "a.png"), "--store",
                                str(empty_store)), "eval")


def test_dicomweb_without_httpx(empty_store: Path) -> None:
    done = run_without(["httpx"], "index", "dicomweb+http://127.0.0.1:9/dicom-web", "--store", str(empty_store))
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert "medsearch[pacs]" in done.stderr, done.stderr
