"""Opt-in int8 (dynamic quantization of the linear layers): loads through load_embedder, keeps the embedder
contract, stays close to float32, refuses a GPU, and works through the CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from medsearch.errors import ModelUnavailable
from medsearch.indexer.model_loading import load_embedder

TEXTS = ["left pleural effusion", "a red circle", "normal chest radiograph", "fracture of the wrist"]


def _pixels(n: int, size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (n, 3, size, size)).astype(np.float32)


def test_int8_keeps_the_contract_and_stays_close_to_float32(trained_model: Path) -> None:
    import torch

    exact = load_embedder(str(trained_model), device="cpu", precision="float32")
    int8 = load_embedder(str(trained_model), device="cpu", precision="int8")
    linears = [m for m in int8.model.modules() if type(m).__name__ == "Linear" and m.__module__.startswith("torch.nn")]
    quantized = [m for m in int8.model.modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)]
    assert quantized and not linears
    assert (int8.model_id, int8.revision, int8.dim) == (exact.model_id, exact.revision, exact.dim)

    pixels = _pixels(6, int8.preprocessor.size, seed=1)
    for got, want in ((int8.embed_images(pixels), exact.embed_images(pixels)),
                      (int8.embed_texts(TEXTS), exact.embed_texts(TEXTS))):
        assert got.dtype == np.float32 and got.shape == want.shape and got.shape[1] == exact.dim
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        cosines = np.sum(got * want, axis=1)
        assert cosines.mean() > 0.9, cosines
        assert not np.allclose(got, want, atol=1e-7), "int8 vectors equal float32 ones: nothing was quantized"


def test_unknown_precisions_are_refused_with_the_choices(tiny_model: Path) -> None:
    with pytest.raises(ModelUnavailable, match="int8"):
        load_embedder(str(tiny_model), device="cpu", precision="int4")


@pytest.mark.parametrize("precision", ["int8", "fast"])
def test_cli_indexes_and_searches_in_a_faster_precision(cli: Callable[..., Any], image_folder: Path,
                                                        trained_model: Path, tmp_path: Path, precision: str) -> None:
    store = tmp_path / "store"
    report = cli("index", image_folder, "--store", store, "--model", trained_model, "--workers", "0",
                 "--precision", precision, "--json")
    assert report["added"] == 9
    found = cli("search", "a red circle", "-k", "3", "--store", store, "--precision", precision, "--json")
    assert len(found["results"]) == 3
    target = image_folder / "dicom" / "CT_small.dcm"
    similar = cli("similar", target, "-k", "1", "--include-self", "--store", store, "--precision", precision, "--json")
    assert similar["results"][0]["path"] == str(target.resolve())
    assert abs(similar["results"][0]["score"] - 1.0) < 1e-3
    refused = cli("search", "x", "--store", store, "--precision", "half", "--json", expect=3)
    assert refused["error"]["code"] == "model_unavailable" and "int8" in refused["error"]["message"]
