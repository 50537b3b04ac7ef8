"""Every embedder passes the same contract; the SigLIP adapter equals the full model's own embeddings."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from medsearch.indexer.preprocess import Preprocessor
from PIL import Image

TEXTS = ["left pleural effusion", "a red circle", "pneumothorax with chest tube"]


def _pixels(embedder: Any, count: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.stack([embedder.preprocessor(rng.random((40, 30, 3), dtype=np.float32)) for _ in range(count)])


def test_contract_shapes_dtypes_and_unit_norm(tiny_embedder: Any) -> None:
    images = tiny_embedder.embed_images(_pixels(tiny_embedder, 3))
    texts = tiny_embedder.embed_texts(TEXTS)
    for vectors, rows in ((images, 3), (texts, 3)):
        assert vectors.shape == (rows, tiny_embedder.dim)
        assert vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert tiny_embedder.dim == 32
    assert not np.allclose(texts[0], texts[1])


def test_text_path_never_touches_the_vision_tower(tiny_embedder: Any) -> None:
    def refuse(*_args: Any) -> None:
        raise AssertionError("the vision tower ran for a text query")

    handle = tiny_embedder.model.vision_model.register_forward_pre_hook(refuse)
    try:
        tiny_embedder.embed_texts(["cardiomegaly"])
    finally:
        handle.remove()


def test_image_path_never_touches_the_text_tower(tiny_embedder: Any) -> None:
    def refuse(*_args: Any) -> None:
        raise AssertionError("the text tower ran for an image")

    handle = tiny_embedder.model.text_model.register_forward_pre_hook(refuse)
    try:
        tiny_embedder.embed_images(_pixels(tiny_embedder, 1))
    finally:
        handle.remove()


def test_vectors_equal_the_full_models_own_embeddings(tiny_embedder: Any, tiny_model: Path) -> None:
    from transformers import AutoModel, AutoProcessor

    model = AutoModel.from_pretrained(tiny_model).eval()
    processor = AutoProcessor.from_pretrained(tiny_model)
    pixel_values = _pixels(tiny_embedder, 2)
    length = model.config.text_config.max_position_embeddings
    tokens = processor.tokenizer(TEXTS[:2], padding="max_length", max_length=length, truncation=True,
                                 return_tensors="pt")
    with torch.no_grad():
        out = model(input_ids=tokens["input_ids"], pixel_values=torch.from_numpy(pixel_values))
    np.testing.assert_allclose(tiny_embedder.embed_texts(TEXTS[:2]), out.text_embeds.numpy(), atol=1e-5)
    np.testing.assert_allclose(tiny_embedder.embed_images(pixel_values), out.image_embeds.numpy(), atol=1e-5)


def test_text_is_padded_to_the_models_length(tiny_embedder: Any) -> None:
    """SigLIP pools the last position: padding to the longest prompt would change the vector."""
    alone = tiny_embedder.embed_texts(["effusion"])
    with_long_neighbour = tiny_embedder.embed_texts(["effusion", "a much longer sentence about a chest film"])
    np.testing.assert_allclose(alone[0], with_long_neighbour[0], atol=1e-6)


def test_preprocessor_matches_the_hugging_face_processor(tiny_embedder: Any, tiny_model: Path) -> None:
    """Ours resizes float planes; theirs goes through 8-bit PIL. They agree to 8-bit precision."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_model)
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)
    theirs = processor.image_processor(images=Image.fromarray(image), return_tensors="np")["pixel_values"][0]
    ours = tiny_embedder.preprocessor(image.astype(np.float32) / 255.0)
    assert ours.shape == theirs.shape == (3, 32, 32)
    assert np.abs(ours - theirs).mean() < 0.02


def test_preprocessor_pads_to_a_centred_square() -> None:
    pixels = np.ones((10, 30), dtype=np.float32)
    out = Preprocessor(size=30, mean=(0.5,) * 3, std=(0.5,) * 3)(pixels)
    assert out.shape == (3, 30, 30)
    assert np.allclose(out[:, 0, :], -1.0) and np.allclose(out[:, -1, :], -1.0)  # zero padding -> -1
    assert np.allclose(out[:, 15, :], 1.0)  # the image itself, centred


@pytest.mark.parametrize("shape", [(16, 16), (16, 16, 3)])
def test_preprocessor_keeps_greyscale_and_colour_consistent(shape: tuple[int, ...]) -> None:
    pixels = np.full(shape, 0.25, dtype=np.float32)
    out = Preprocessor(size=8)(pixels)
    np.testing.assert_allclose(out, -0.5, atol=1e-6)


def test_the_pipeline_picks_the_batch_size_from_the_device(tiny_embedder: Any, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """16 images per model call on a CPU unless told otherwise (64 on a GPU), the first call only as many as
    there are decoding workers; every image is embedded once."""
    from medsearch.indexer.pipeline import IndexSettings, default_batch_size, index_paths
    from medsearch.storage.store import Store

    assert default_batch_size(tiny_embedder) == 16
    assert default_batch_size(SimpleNamespace(device="cuda:0")) == 64  # type: ignore[arg-type]
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(20):
        Image.fromarray(np.full((8, 8), i * 10, np.uint8)).save(folder / f"{i:02}.png")
    calls: list[int] = []
    original = tiny_embedder.embed_images

    def counting(pixels: np.ndarray) -> np.ndarray:
        calls.append(len(pixels))
        return original(pixels)

    monkeypatch.setattr(tiny_embedder, "embed_images", counting)
    for name, settings, want in (("auto", IndexSettings(workers=0), [16, 4]),
                                 ("seven", IndexSettings(batch_size=7, workers=0), [7, 7, 6]),
                                 ("ramp", IndexSettings(workers=2), [2, 16, 2])):  # first batch: the workers' files
        calls.clear()
        with Store.open(tmp_path / name, create=True, writable=True) as store:
            assert index_paths(store, lambda: tiny_embedder, [folder], settings).added == 20
        assert calls == want
