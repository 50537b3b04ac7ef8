"""The head redone by hand equals Hugging Face's; the value split is exact; each method's map has the
patch grid's shape and its documented sign; the options are checked."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from medsearch.errors import InvalidQuery
from medsearch.explain.explain import explain_pixels
from medsearch.explain.head import patch_tokens, pool, vision_tower
from medsearch.explain.methods import legrad_map, maskclip_map, value_maps


@pytest.fixture(scope="module")
def inputs(tiny_embedder: Any) -> tuple[torch.Tensor, torch.Tensor]:
    pixels = torch.from_numpy(np.random.default_rng(3).uniform(-1, 1, (1, 3, 32, 32)).astype(np.float32))
    return pixels, torch.from_numpy(tiny_embedder.embed_texts(["a red circle"])[0])


def test_pool_equals_the_towers_pooler_output(tiny_embedder: Any, inputs: Any) -> None:
    pixels = torch.cat([inputs[0], -inputs[0]])
    model = tiny_embedder.model
    with torch.no_grad():
        expected = model.get_image_features(pixel_values=pixels).pooler_output
        pooled = pool(vision_tower(model).head, patch_tokens(model, pixels)[-1])
    assert pooled.attention.shape == (2, 4, 16)
    torch.testing.assert_close(pooled.attention.sum(-1), torch.ones(2, 4))
    torch.testing.assert_close(pooled.embedding, expected, atol=1e-5, rtol=1e-5)


def test_value_split_adds_up_to_the_attention_output(tiny_embedder: Any, inputs: Any) -> None:
    pixels, text = inputs
    model = tiny_embedder.model
    maps = value_maps(model, pixels, text)
    with torch.no_grad():
        output = pool(vision_tower(model).head, patch_tokens(model, pixels)[-1]).output[0]
    assert maps.grid.shape == (4, 4) and maps.heads is not None and maps.heads.shape == (4, 4, 4)
    np.testing.assert_allclose(maps.heads.sum(axis=0), maps.grid, atol=1e-6)
    assert maps.bias is not None
    assert maps.grid.sum() + maps.bias == pytest.approx(float(output @ text), abs=1e-5)


def test_maskclip_is_a_cosine_and_legrad_is_positive(tiny_embedder: Any, inputs: Any) -> None:
    pixels, text = inputs
    dense = maskclip_map(tiny_embedder.model, pixels, text).grid
    assert dense.shape == (4, 4) and np.all(np.abs(dense) <= 1 + 1e-5) and np.ptp(dense) > 0
    neutral = torch.from_numpy(tiny_embedder.embed_texts(["an image"])[0])
    plain, corrected = (legrad_map(tiny_embedder.model, pixels, text, n).grid for n in (None, neutral))
    assert plain.min() >= 0 and plain.max() > 0 and not np.allclose(plain, corrected)


def test_score_is_the_stored_cosine_and_geometry_follows_the_padding(tiny_embedder: Any) -> None:
    frame = np.random.default_rng(4).random((30, 50, 3), dtype=np.float32)
    query = tiny_embedder.embed_texts(["a blue square"])[0]
    heatmap = explain_pixels(tiny_embedder, frame, query, "values")
    expected = float(tiny_embedder.embed_images(tiny_embedder.preprocessor(frame)[np.newaxis])[0] @ query)
    assert heatmap.score == pytest.approx(expected, abs=1e-5)
    assert (heatmap.side, heatmap.offset, heatmap.size) == (50, (0, 10), (50, 30))
    data = heatmap.as_dict()
    assert data["grid_size"] == [4, 4] and len(data["heads"]) == 4 and "not a finding" in data["note"]


def test_unknown_method_and_int8_legrad_are_refused(tiny_model: Any) -> None:
    from medsearch.indexer.model_loading import load_embedder

    int8 = load_embedder(str(tiny_model), device="cpu", precision="int8")
    frame = np.zeros((32, 32), dtype=np.float32)
    query = int8.embed_texts(["a red circle"])[0]
    with pytest.raises(InvalidQuery, match="unknown explain method"):
        explain_pixels(int8, frame, query, "gradcam")
    with pytest.raises(InvalidQuery, match="float weights"):
        explain_pixels(int8, frame, query, "legrad")
    assert explain_pixels(int8, frame, query, "values").grid.shape == (4, 4)
