"""The leakage audit on drawn shapes: planted re-encoded, cropped and re-windowed copies across splits,
a planted same-patient leak and an identical file; a clean split reports nothing; CSV, plot, refusals."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from search.learn.copies import crop, reencode, window_shift, youden_threshold
from tests.learn.conftest import run_cli, write_sidecar
from tests.tiny_siglip import make_caption_images

PLANTED = 12


def _plant_copy(source: Path, target_dir: Path, kind: int, rng: np.random.Generator) -> Path:
    """A copy of ``source`` written with PIL: JPEG re-encoded, cropped 5-10 %, or contrast/brightness moved."""
    image = Image.open(source).convert("RGB")
    if kind == 0:
        target = target_dir / f"copy_{source.stem}.jpg"
        image.save(target, quality=int(rng.integers(65, 85)))
        return target
    target = target_dir / f"copy_{source.stem}.png"
    if kind == 1:
        width, height = image.size
        cut_w, cut_h = int(width * rng.uniform(0.05, 0.10)), int(height * rng.uniform(0.05, 0.10))
        left, top = int(rng.integers(0, cut_w + 1)), int(rng.integers(0, cut_h + 1))
        image = image.crop((left, top, width - (cut_w - left), height - (cut_h - top)))
    else:
        pixels = np.asarray(image, dtype=np.float32) * rng.uniform(0.88, 0.95) + rng.uniform(8, 16)
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    image.save(target)
    return target


def _build(root: Path, model: Path, planted: bool) -> dict[str, Any]:
    """36 originals (patients of two images; split train/test by patient) and, when ``planted``: PLANTED
    copies in the other split under new patients, an identical file, and image 0 moved to patient p1.
    Clean: the first three classes in train, the others in test (the tiny model puts distinct drawings of
    one class closer than its calibrated threshold, so only a split by class is free of look-alikes)."""
    images = make_caption_images(root / "images", per_class=6, seed=99)
    rows = [{"file": img.path.name, "patient": f"p{n // 2}",
             "split": ("train" if (n // 2) % 2 == 0 else "test") if planted else ("train" if n < 18 else "test")}
            for n, img in enumerate(images)]
    copies: list[tuple[str, str]] = []
    if planted:
        rng = np.random.default_rng(5)
        for k, n in enumerate(range(0, 36, 3)[:PLANTED]):
            copy = _plant_copy(images[n].path, root / "images", k % 3, rng)
            copies.append((images[n].path.name, copy.name))
            other_split = "test" if rows[n]["split"] == "train" else "train"
            rows.append({"file": copy.name, "patient": f"c{k}", "split": other_split})
        shutil.copy(images[7].path, root / "images" / "identical.png")
        rows.append({"file": "identical.png", "patient": "c99", "split": "train"})  # image 7 is p3: test
        rows[0]["patient"] = "p1"  # p1's images are in test, image 0 stays in train
    write_sidecar(root / "sidecar.csv", rows)
    run_cli("index", root / "images", "--store", root / "store", "--model", model, "--workers", "0")
    run_cli("import-metadata", root / "sidecar.csv", "--store", root / "store")
    return {"store": root / "store", "copies": copies}


@pytest.fixture(scope="module")
def planted(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _build(tmp_path_factory.mktemp("audit-planted"), trained_model, planted=True)


@pytest.fixture(scope="module")
def clean(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _build(tmp_path_factory.mktemp("audit-clean"), trained_model, planted=False)


def _names(pair: dict[str, Any]) -> frozenset[str]:
    return frozenset((Path(pair["path_a"]).name, Path(pair["path_b"]).name))


def test_audit_finds_planted_copies_leaks_and_identical_files(cli: Callable[..., Any], planted: dict[str, Any],
                                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    found = cli("audit", "--split-field", "split", "--patient", "patient", "--csv", tmp_path / "pairs.csv",
                "--plot", tmp_path / "scores.png", "--store", planted["store"], "--json")
    near = {_names(p) for p in found["pairs"] if p["kind"] == "near-duplicate"}
    wanted = {frozenset(pair) for pair in planted["copies"]}
    recall = len(wanted & near) / len(wanted)
    calibration = found["calibration"]
    print(f"audit: threshold {found['threshold']:.4f}, J {calibration['youden_j']:.3f}, recall {recall:.2f} "
          f"({len(wanted & near)}/{len(wanted)}), other near pairs {len(near - wanted)}")
    assert recall >= 0.9
    assert calibration["copies"] == 3 * 49 and calibration["unreadable"] == 0
    exact = [p for p in found["pairs"] if p["kind"] == "exact"]
    assert [_names(p) for p in exact] == [frozenset(("identical.png", "blue_square_001.png"))]
    assert found["same_patient"] == [{"patient": "p1", "splits": {"train": 1, "test": 2}}]
    assert found["summary"]["same_patient"] == 1 and found["summary"]["exact_duplicates"] == 1

    with (tmp_path / "pairs.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(found["pairs"]) and {r["kind"] for r in rows} == {"exact", "near-duplicate"}
    assert (tmp_path / "scores.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    text = cli("audit", "--store", planted["store"], "--patient", "patient")
    assert "threshold cosine" in text.stdout and "1 patients in two splits" in text.stdout


def test_audit_of_a_clean_split_reports_nothing(cli: Callable[..., Any], clean: dict[str, Any],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    found = cli("audit", "--patient", "patient", "--store", clean["store"], "--json")
    print(f"clean audit: threshold {found['threshold']:.4f}, pairs {len(found['pairs'])}")
    assert found["summary"] == {"near_duplicates": 0, "exact_duplicates": 0, "same_patient": 0}
    assert found["splits"] == {"test": 18, "train": 18}


def test_copies_are_pure_and_shaped() -> None:
    rng = np.random.default_rng(0)
    pixels = rng.random((40, 60, 3)).astype(np.float32)
    cropped = crop(pixels, 0.1, rng)
    assert cropped.shape == (36, 54, 3)
    assert reencode(pixels).shape == pixels.shape and reencode(pixels).dtype == np.float32
    shifted = window_shift(pixels, 0.05, 1.1)
    assert shifted.min() >= 0 and shifted.max() <= 1 and not np.allclose(shifted, pixels)


def test_youden_threshold_separates_clean_distributions() -> None:
    threshold, j, tpr, fpr = youden_threshold(np.array([0.97, 0.98, 0.99]), np.array([0.5, 0.6, 0.9]))
    assert 0.9 < threshold < 0.97 and (j, tpr, fpr) == (1.0, 1.0, 0.0)
