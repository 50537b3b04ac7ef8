"""Tests for the tiny SigLIP fixtures: the folder loads like the real one, and the trained one ranks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from transformers import (
    AutoImageProcessor,
    AutoModel,
    AutoProcessor,
    AutoTokenizer,
    SiglipModel,
    SiglipProcessor,
    SiglipTokenizer,
)

from tests.tiny_siglip import (
    CANVAS_SIZES,
    CLASS_CAPTIONS,
    CLASS_NAMES,
    EMBED_DIM,
    TEXT_MAX_LENGTH,
    build_tiny_siglip,
    make_caption_images,
    train_tiny_siglip,
)


@pytest.fixture(scope="module")
def built_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight tiny SigLIP folder (seed 0)."""
    return build_tiny_siglip(tmp_path_factory.mktemp("built") / "tiny-siglip", seed=0)


@pytest.fixture(scope="module")
def trained_dir(trained_model: Path) -> Path:
    """The trained tiny SigLIP folder (seed 0) of the session: the committed one of the same training code
    (``tests/conftest.COMMITTED_MODELS``) or one ``MEDSEARCH_TEST_MODEL_CACHE`` kept from an earlier run;
    ``test_training_is_deterministic`` trains again and compares."""
    return trained_model


def tokenize(tokenizer: Any, texts: list[str]) -> torch.Tensor:
    """Token ids (N, TEXT_MAX_LENGTH) int64, padded to max length as SigLIP expects."""
    tokens = tokenizer(
        texts, padding="max_length", max_length=TEXT_MAX_LENGTH, truncation=True, return_tensors="pt"
    )
    return tokens["input_ids"]


def load_unit_float_square(path: Path) -> np.ndarray:
    """PNG -> float32 (S, S, 3) in [0, 1], zero-padded to a centred square."""
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    height, width, _ = pixels.shape
    side = max(height, width)
    square = np.zeros((side, side, 3), dtype=np.float32)
    top, left = (side - height) // 2, (side - width) // 2
    square[top : top + height, left : left + width] = pixels
    return square


def unit_rows(vectors: torch.Tensor) -> np.ndarray:
    """Rows scaled to unit L2 length, as float32 numpy."""
    array = vectors.detach().numpy().astype(np.float32)
    return array / np.linalg.norm(array, axis=1, keepdims=True)


def test_folder_loads_through_auto_classes(built_dir: Path) -> None:
    model = AutoModel.from_pretrained(built_dir)
    processor = AutoProcessor.from_pretrained(built_dir)
    tokenizer = AutoTokenizer.from_pretrained(built_dir)
    image_processor = AutoImageProcessor.from_pretrained(built_dir)

    assert isinstance(model, SiglipModel)
    assert isinstance(processor, SiglipProcessor)
    assert isinstance(tokenizer, SiglipTokenizer)
    assert image_processor.size == {"height": 32, "width": 32}
    assert list(image_processor.image_mean) == [0.5, 0.5, 0.5]
    assert list(image_processor.image_std) == [0.5, 0.5, 0.5]
    assert model.get_input_embeddings().num_embeddings == len(tokenizer)
    assert 200 <= len(tokenizer) <= 400
    assert sum(f.stat().st_size for f in built_dir.iterdir()) < 1_000_000


def test_tower_features_are_32_wide(built_dir: Path) -> None:
    model = AutoModel.from_pretrained(built_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(built_dir)
    pixel_values = torch.rand(3, 3, 32, 32) * 2 - 1

    with torch.no_grad():
        text = model.get_text_features(input_ids=tokenize(tokenizer, ["a red circle", "pleural effusion"]))
        image = model.get_image_features(pixel_values=pixel_values)

    assert text.pooler_output.shape == (2, EMBED_DIM)
    assert image.pooler_output.shape == (3, EMBED_DIM)
    assert text.pooler_output.dtype == image.pooler_output.dtype == torch.float32


def test_same_seed_gives_same_weights(tmp_path: Path, built_dir: Path) -> None:
    again = load_file(build_tiny_siglip(tmp_path / "again", seed=0) / "model.safetensors")
    other = load_file(build_tiny_siglip(tmp_path / "other", seed=1) / "model.safetensors")
    first = load_file(built_dir / "model.safetensors")

    assert again.keys() == first.keys()
    assert all(torch.equal(again[name], first[name]) for name in first)
    assert not all(torch.equal(other[name], first[name]) for name in first)


def test_tokenizer_pads_to_max_length_and_round_trips(built_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(built_dir)
    texts = ["A red circle!", "small left pleural effusion", "pneumothorax"]

    ids = tokenize(tokenizer, texts)
    decoded = tokenizer.batch_decode(ids, skip_special_tokens=True)

    assert ids.shape == (3, TEXT_MAX_LENGTH)
    assert tokenizer.pad_token == tokenizer.eos_token == "</s>"
    assert (ids[:, -1] == tokenizer.pad_token_id).all()
    assert tokenizer.unk_token_id not in ids
    assert decoded == ["a red circle", "small left pleural effusion", "pneumothorax"]


def test_caption_images_are_written_and_deterministic(tmp_path: Path) -> None:
    first = make_caption_images(tmp_path / "a", per_class=4, seed=7)
    again = make_caption_images(tmp_path / "b", per_class=4, seed=7)

    assert len(first) == 4 * len(CLASS_NAMES)
    assert {record.class_name for record in first} == set(CLASS_NAMES)
    assert all(record.caption == CLASS_CAPTIONS[record.class_name][0] for record in first)
    images = [Image.open(record.path) for record in first]
    assert all(image.mode == "RGB" and image.size in CANVAS_SIZES for image in images)
    assert any(image.width != image.height for image in images)
    for one, two in zip(first, again, strict=True):
        assert np.array_equal(np.asarray(Image.open(one.path)), np.asarray(Image.open(two.path)))


def test_trained_model_retrieves_each_class_from_fresh_images(tmp_path: Path, trained_dir: Path) -> None:
    records = make_caption_images(tmp_path / "fresh", per_class=10, seed=1234)
    model = AutoModel.from_pretrained(trained_dir).eval()
    processor = AutoProcessor.from_pretrained(trained_dir)
    squares = [load_unit_float_square(record.path) for record in records]
    pixel_values = processor(images=squares, do_rescale=False, return_tensors="pt")["pixel_values"]
    classes = np.array([record.class_name for record in records])

    with torch.no_grad():
        images = unit_rows(model.get_image_features(pixel_values=pixel_values).pooler_output)
        for class_name, captions in CLASS_CAPTIONS.items():
            ids = tokenize(processor.tokenizer, list(captions))
            texts = unit_rows(model.get_text_features(input_ids=ids).pooler_output)
            top5 = np.argsort(-(texts @ images.T), axis=1, kind="stable")[:, :5]
            precision_at_5 = (classes[top5] == class_name).mean(axis=1)
            assert (precision_at_5 >= 0.8).all(), (class_name, captions, precision_at_5)


def test_training_is_deterministic(tmp_path: Path, trained_dir: Path) -> None:
    again = load_file(train_tiny_siglip(tmp_path / "again", seed=0) / "model.safetensors")
    first = load_file(trained_dir / "model.safetensors")
    built = load_file(build_tiny_siglip(tmp_path / "untrained", seed=0) / "model.safetensors")

    assert all(torch.equal(again[name], first[name]) for name in first)
    assert not torch.equal(built["logit_scale"], first["logit_scale"])
