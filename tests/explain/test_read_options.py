"""``Medsearch.explain`` of a stored id reads the file again the way it was indexed: the VOI options
recorded for that image, not the defaults."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from medsearch.api import Medsearch
from medsearch.indexer.frames import ReadOptions
from medsearch.indexer.readers import read_file
from pydicom.data import get_testdata_file


def test_a_lung_window_image_explains_on_lung_pixels(cli: Callable[..., Any], tiny_model: Path,
                                                      tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    shutil.copy(str(get_testdata_file("CT_small.dcm")), folder / "ct.dcm")
    store = tmp_path / "store"
    cli("index", folder, "--store", store, "--model", tiny_model, "--window", "lung", "--workers", "0", "--json")
    lung = read_file(folder / "ct.dcm", ReadOptions(window="lung"))[0].pixels
    default = read_file(folder / "ct.dcm", ReadOptions())[0].pixels
    assert not np.allclose(lung, default)  # the test can tell the two readings apart

    with Medsearch.open(store, model=str(tiny_model)) as ms:
        image_id = ms.search("a chest x-ray", k=1)[0].id
        stored = ms.explain(image_id, "a chest x-ray", "maskclip")
        asked = ms.explain(image_id, "a chest x-ray", "maskclip", read_options=ReadOptions())
    np.testing.assert_array_equal(stored.pixels, lung)
    np.testing.assert_array_equal(asked.pixels, default)  # explicit options still win
