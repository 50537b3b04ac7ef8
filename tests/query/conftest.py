"""The synthetic volume store the series/study tests share (tests/volumes.py, the tiny trained model)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def volumes(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """22 series of 12 slices (3 per drawn class, 4 blank), 11 studies, 4 patients, indexed."""
    from medsearch.api import Medsearch
    from medsearch.indexer.model_loading import load_embedder
    from medsearch.indexer.pipeline import IndexSettings

    from tests.volumes import write_volume_set

    root = tmp_path_factory.mktemp("volumes")
    specs = write_volume_set(root / "dicom")
    embedder = load_embedder(str(trained_model), device="cpu")
    with Medsearch.open(root / "store", create=True, writable=True, embedder=embedder) as ms:
        ms.index([root / "dicom"], IndexSettings(batch_size=16, workers=0))
    return {"store": root / "store", "specs": specs, "embedder": embedder, "root": root, "model": trained_model}
