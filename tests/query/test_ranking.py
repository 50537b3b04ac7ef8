"""Ranking is right, not only shaped right: a tiny SigLIP trained on drawn shapes with captions, queried
through the CLI, retrieves the matching images. Guards against id mix-ups, wrong normalisation and
preprocessing that differs between indexing and querying."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.tiny_siglip import CLASS_CAPTIONS, make_caption_images


def test_text_queries_retrieve_the_matching_images(cli: Callable[..., Any], trained_model: Path,
                                                   tmp_path: Path) -> None:
    images = make_caption_images(tmp_path / "images", per_class=8, seed=4321)
    classes = {str(image.path.resolve()): image.class_name for image in images}
    store = tmp_path / "store"
    report = cli("index", tmp_path / "images", "--store", store, "--model", trained_model, "--json")
    assert report["added"] == len(images)
    for class_name, captions in CLASS_CAPTIONS.items():
        for caption in captions[:2]:
            found = cli("search", caption, "-k", "5", "--store", store, "--json")["results"]
            precision = sum(classes[hit["path"]] == class_name for hit in found) / 5
            assert precision >= 0.8, (caption, [classes[hit["path"]] for hit in found])


def test_image_queries_retrieve_their_own_class(cli: Callable[..., Any], trained_model: Path, tmp_path: Path) -> None:
    images = make_caption_images(tmp_path / "images", per_class=6, seed=77)
    classes = {str(image.path.resolve()): image.class_name for image in images}
    store = tmp_path / "store"
    cli("index", tmp_path / "images", "--store", store, "--model", trained_model, "--json", "--workers", "0")
    queries = make_caption_images(tmp_path / "queries", per_class=1, seed=78)
    for query in queries:
        found = cli("similar", query.path, "-k", "5", "--store", store, "--json")["results"]
        assert sum(classes[hit["path"]] == query.class_name for hit in found) >= 4
