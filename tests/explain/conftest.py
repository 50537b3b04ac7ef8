"""The explain tests' model: the tiny SigLIP trained on drawn shapes with an 8 x 8 patch grid (patch 4
on its 32 x 32 input) instead of the 4 x 4 grid of the other tests, so that a map has cells to point
with. Trained once per session (the same 500 steps as ``trained_model``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import reuse_trained
from tests.tiny_siglip import train_tiny_siglip


@pytest.fixture(scope="session")
def explain_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return reuse_trained("explain", tmp_path_factory.mktemp("explain-model"),
                         lambda out: train_tiny_siglip(out, seed=0, patch_size=4))


@pytest.fixture(scope="session")
def explain_embedder(explain_model: Path) -> Any:
    from medsearch.indexer.model_loading import load_embedder

    return load_embedder(str(explain_model), device="cpu")
