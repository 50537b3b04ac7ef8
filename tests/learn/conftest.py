"""Stores for the learning tests: drawn shapes indexed with the tiny trained model, a sidecar with a
patient column (two images per patient) and 0/1 class columns; built once per session, copied per test."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.tiny_siglip import CLASS_NAMES, make_caption_images


def run_cli(*args: Any) -> None:
    """Run the real CLI in-process; fail with its output unless it exits 0."""
    from medsearch.cli import app
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output


def write_sidecar(path: Path, rows: list[dict[str, Any]]) -> Path:
    """A CSV with the keys of ``rows[0]`` as columns."""
    columns = list(rows[0])
    lines = [",".join(columns)] + [",".join(str(row[c]) for c in columns) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def shapes_store(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """20 images per class (120): ``patient`` p0..p59 (two images of one class each), a 0/1 column per
    class, and ``half`` = train for the first 10 of each class, heldout for the rest."""
    root = tmp_path_factory.mktemp("learn-shapes")
    images = make_caption_images(root / "images", per_class=20, seed=2024)
    rows = [{"file": img.path.name, "patient": f"p{n // 2}",
             "half": "train" if int(img.path.stem[-3:]) < 10 else "heldout",
             **{name: int(img.class_name == name) for name in CLASS_NAMES}} for n, img in enumerate(images)]
    sidecar = write_sidecar(root / "sidecar.csv", rows)
    store = root / "store"
    run_cli("index", root / "images", "--store", store, "--model", trained_model, "--workers", "0")
    run_cli("import-metadata", sidecar, "--store", store)
    return {"store": store, "images": images, "rows": rows, "model": trained_model}


@pytest.fixture
def shapes(shapes_store: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A private copy of ``shapes_store``."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    store = tmp_path / "store"
    shutil.copytree(shapes_store["store"], store, ignore=shutil.ignore_patterns("*.lock"))
    return {**shapes_store, "store": store}


@pytest.fixture
def ids_by_file(cli: Callable[..., Any]) -> Callable[[Path], dict[str, int]]:
    """{file name: image id} of a store, read through the real store."""

    def read(store: Path) -> dict[str, int]:
        from medsearch.storage.models import Image
        from medsearch.storage.store import Store
        from sqlalchemy import select

        with Store.open(store) as opened, opened.read_session() as session:
            return {Path(p).name: i for i, p in session.execute(select(Image.id, Image.path))}

    return read
