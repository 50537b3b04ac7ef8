"""Stores of drawn shapes with a split by patient, for the audit's tests and benchmark: a clean one, or
one with planted leaks (re-encoded, cropped and re-windowed copies across splits under new patients, an
identical file and a patient moved into the other split)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from medsearch.learn.split import assign_splits
from PIL import Image

from tests.learn.conftest import run_cli, write_sidecar
from tests.tiny_siglip import make_caption_images

COPY_KINDS = ("re-encoded", "cropped", "re-windowed")


@dataclass
class AuditStore:
    """A store and what was planted in it: ``copies`` (original file, copy file, kind), the identical
    file's pair and the moved patient (None when clean)."""

    store: Path
    images: int
    copies: list[tuple[str, str, str]] = field(default_factory=list)
    identical: tuple[str, str] | None = None
    moved_patient: str | None = None


def plant_copy(source: Path, target_dir: Path, kind: str, rng: np.random.Generator) -> Path:
    """A copy of ``source`` written with PIL: JPEG re-encoded, cropped 5-10 %, or contrast/brightness moved."""
    image = Image.open(source).convert("RGB")
    if kind == "re-encoded":
        target = target_dir / f"copy_{source.stem}.jpg"
        image.save(target, quality=int(rng.integers(65, 85)))
        return target
    target = target_dir / f"copy_{source.stem}.png"
    if kind == "cropped":
        width, height = image.size
        cut_w, cut_h = int(width * rng.uniform(0.05, 0.10)), int(height * rng.uniform(0.05, 0.10))
        left, top = int(rng.integers(0, cut_w + 1)), int(rng.integers(0, cut_h + 1))
        image = image.crop((left, top, width - (cut_w - left), height - (cut_h - top)))
    else:
        pixels = np.asarray(image, dtype=np.float32) * rng.uniform(0.88, 0.95) + rng.uniform(8, 16)
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    image.save(target)
    return target


def build(root: Path, model: Path, per_class: int = 6, seed: int = 99, split_seed: int = 0,
          planted: int = 0, by_class: bool = False) -> AuditStore:
    """``per_class`` drawings of every class (patients of two drawings of one class), split train/test
    50/50 at random by patient (``split_seed``; shape classes fall on both sides). With ``planted`` > 0:
    that many copies (kinds in turn) of every third original, each in the other split under a new
    patient; an identical copy of image 7 in the other split; image 0 moved to the patient of image 2,
    in the other split. ``by_class``: the first three classes in train, the others in test instead."""
    images = make_caption_images(root / "images", per_class=per_class, seed=seed)
    patients = np.array([f"p{n // 2}" for n in range(len(images))], dtype=object)
    chosen = assign_splits(patients, np.zeros(len(images), dtype=object), (0.5, 0.5), split_seed)
    if by_class:
        chosen = (np.arange(len(images)) >= len(images) // 2).astype(np.int64)
    rows = [{"file": img.path.name, "patient": patients[n], "split": ("train", "test")[chosen[n]]}
            for n, img in enumerate(images)]
    found = AuditStore(root / "store", len(images))
    if planted:
        _plant(root, images, rows, planted, found)
    write_sidecar(root / "sidecar.csv", rows)
    run_cli("index", root / "images", "--store", found.store, "--model", model, "--workers", "0")
    run_cli("import-metadata", root / "sidecar.csv", "--store", found.store)
    return found


def _other(split_name: str) -> str:
    return "test" if split_name == "train" else "train"


def _plant(root: Path, images: list, rows: list[dict], planted: int, found: AuditStore) -> None:
    rng = np.random.default_rng(5)
    for k, n in enumerate(range(0, len(images), 3)[:planted]):
        kind = COPY_KINDS[k % 3]
        copy = plant_copy(images[n].path, root / "images", kind, rng)
        found.copies.append((images[n].path.name, copy.name, kind))
        rows.append({"file": copy.name, "patient": f"c{k}", "split": _other(rows[n]["split"])})
    shutil.copy(images[7].path, root / "images" / "identical.png")
    rows.append({"file": "identical.png", "patient": "c-identical", "split": _other(rows[7]["split"])})
    found.identical = ("identical.png", images[7].path.name)
    target = next(n for n in range(2, len(rows)) if rows[n]["split"] != rows[0]["split"])
    rows[0]["patient"] = found.moved_patient = str(rows[target]["patient"])
    found.images = len(rows)
