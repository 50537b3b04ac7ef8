"""The VOI used is recorded per image and decides "unchanged": another --voi or --window re-embeds the
greyscale DICOMs (and only them); ``similar FILE`` reads a file as the store did, so an indexed file
copied elsewhere scores 1.0 against itself; the preview is the model input, pixel for pixel."""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from medsearch.indexer.frames import ReadOptions
from medsearch.indexer.model_loading import load_embedder
from medsearch.indexer.preview import denormalise, model_input, preview_png
from medsearch.storage import vector_codec
from medsearch.storage.store import Store
from PIL import Image
from pydicom.data import get_testdata_files

from tests.conftest import write_png

Cli = Callable[..., Any]


def _sample(name: str) -> Path:
    return next(Path(p) for p in get_testdata_files() if Path(p).name == name)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A CR (MONOCHROME1, own window), a CT without a window, and a PNG."""
    folder = tmp_path / "images"
    folder.mkdir()
    shutil.copy(_sample("6154"), folder / "cr.dcm")
    shutil.copy(_sample("CT_small.dcm"), folder / "ct.dcm")
    write_png(folder / "photo.png", 3)
    return folder


def _items(cli: Cli, store: Path) -> dict[str, dict[str, Any]]:
    found = cli("search", "a chest x-ray", "-k", "10", "--store", store, "--json")["results"]
    return {Path(r["path"]).name: r for r in found}


def _vectors(store: Path) -> dict[str, np.ndarray]:
    from medsearch.storage.models import Image as Row
    from sqlalchemy import select

    with Store.open(store) as opened, opened.read_session() as session:
        rows = session.execute(select(Row.path, Row.embedding)).all()
    return {Path(p).name: vector_codec.decode(blob) for p, blob in rows}


def test_changing_the_voi_re_embeds_only_greyscale_dicoms(cli: Cli, folder: Path, tiny_model: Path,
                                                          tmp_path: Path) -> None:
    store = tmp_path / "store"
    base = ("--store", store, "--model", tiny_model, "--json", "--workers", "0")
    first = cli("index", folder, *base)
    assert first["added"] == 3
    items = _items(cli, store)
    assert items["cr.dcm"]["metadata"]["voi"] == "window 1600/2800 LINEAR (file) + minmax"
    assert items["ct.dcm"]["metadata"]["voi"] == "window 100/2500 LINEAR (default)"
    assert items["photo.png"]["metadata"].get("voi") is None  # no VOI for a raster image
    before = _vectors(store)

    assert cli("index", folder, *base)["unchanged"] == 3  # same options: nothing to do
    robust = cli("index", folder, *base, "--voi", "robust")
    assert (robust["updated"], robust["unchanged"]) == (2, 1)
    after = _vectors(store)
    assert not np.allclose(after["cr.dcm"], before["cr.dcm"])  # the CR's input changed, so its vector did
    np.testing.assert_array_equal(after["photo.png"], before["photo.png"])
    assert _items(cli, store)["cr.dcm"]["metadata"]["voi"] == "window 1600/2800 LINEAR (file)"

    lung = cli("index", folder, *base, "--voi", "robust", "--window", "lung")
    assert (lung["updated"], lung["unchanged"]) == (2, 1)
    assert _items(cli, store)["ct.dcm"]["metadata"]["voi"] == "window -600/1500 LINEAR (asked)"
    assert cli("info", "--store", store, "--json")["voi_options"] == {"voi=robust;window=-600,1500": 2}
    assert cli("check", "--store", store, "--json")["ok"]


def test_similar_file_reads_as_the_store_did(cli: Cli, folder: Path, tiny_model: Path, tmp_path: Path) -> None:
    """Indexed with --voi robust, a copy of the CR outside the store's roots finds the CR at cosine 1.0
    (read with the default options instead, its input and vector would differ)."""
    store = tmp_path / "store"
    cli("index", folder, "--store", store, "--model", tiny_model, "--json", "--workers", "0", "--voi", "robust")
    copy = tmp_path / "elsewhere" / "copy.dcm"
    copy.parent.mkdir()
    shutil.copy(folder / "cr.dcm", copy)
    found = cli("similar", copy, "-k", "1", "--store", store, "--json")["results"][0]
    assert Path(found["path"]).name == "cr.dcm"
    assert found["score"] == pytest.approx(1.0, abs=1e-5)
    embedder = load_embedder(str(tiny_model), device="cpu")
    default = model_input(copy, ReadOptions(), embedder.preprocessor)
    robust = model_input(copy, ReadOptions(voi="robust"), embedder.preprocessor)
    assert np.abs(default - robust).mean() > 0.1  # so the 1.0 above is not luck


def test_preview_is_the_model_input_pixel_for_pixel(cli: Cli, folder: Path, tiny_model: Path,
                                                    tmp_path: Path) -> None:
    store = tmp_path / "store"
    cli("index", folder, "--store", store, "--model", tiny_model, "--json", "--workers", "0",
        "--window", "lung")
    embedder = load_embedder(str(tiny_model), device="cpu")
    size = embedder.preprocessor.size
    ct_id = _items(cli, store)["ct.dcm"]["id"]
    out = tmp_path / "ct.png"
    cli("preview", str(ct_id), "-o", out, "--store", store, "--json")
    tensor = model_input(folder / "ct.dcm", ReadOptions(window="lung"), embedder.preprocessor)
    written = np.asarray(Image.open(out))
    assert written.shape == (size, size) and written.dtype == np.uint16  # grey: 16-bit
    np.testing.assert_array_equal(written, np.rint(denormalise(tensor, embedder.preprocessor)[:, :, 0] * 65535))
    with Store.open(store) as opened:  # the web page's function gives the same bytes
        assert preview_png(opened, embedder.preprocessor, ct_id) == out.read_bytes()

    photo = tmp_path / "photo.png"  # colour, by path: 8-bit RGB
    cli("preview", folder / "photo.png", "-o", photo, "--store", store, "--json")
    rgb = np.asarray(Image.open(io.BytesIO(photo.read_bytes())))
    colour = model_input(folder / "photo.png", ReadOptions(), embedder.preprocessor)
    assert rgb.shape == (size, size, 3)
    np.testing.assert_array_equal(rgb, np.rint(denormalise(colour, embedder.preprocessor) * 255))


def test_preview_errors_are_one_line(cli: Cli, folder: Path, tiny_model: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    cli("index", folder, "--store", store, "--model", tiny_model, "--json", "--workers", "0")
    missing = cli("preview", "999", "-o", tmp_path / "x.png", "--store", store, "--json", expect=6)
    assert "999" in missing["error"]["message"] and not (tmp_path / "x.png").exists()
    bad = cli("preview", folder / "ct.dcm", "-o", tmp_path / "y.png", "--voi", "fancy", "--store", store,
              "--json", expect=2)
    assert "fancy" in bad["error"]["message"]
