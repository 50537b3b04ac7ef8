"""The leakage audit on drawn shapes split at random by patient: planted re-encoded, cropped and
re-windowed copies across splits, a planted same-patient leak and an identical file; a clean random split
reports only same-class look-alikes (far fewer than the cosine alone would), a split with no
class on both sides reports nothing; CSV, plot."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from medsearch.learn.copies import crop, reencode, window_shift, youden_threshold
from medsearch.learn.pixels import grey, similarity

from tests.learn import leaks

PLANTED = 12


@pytest.fixture(scope="module")
def planted(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> leaks.AuditStore:
    return leaks.build(tmp_path_factory.mktemp("audit-planted"), trained_model, planted=PLANTED)


@pytest.fixture(scope="module")
def clean(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> leaks.AuditStore:
    return leaks.build(tmp_path_factory.mktemp("audit-clean"), trained_model)


@pytest.fixture(scope="module")
def classes_apart(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> leaks.AuditStore:
    return leaks.build(tmp_path_factory.mktemp("audit-apart"), trained_model, by_class=True)


def _names(pair: dict[str, Any]) -> frozenset[str]:
    return frozenset((Path(pair["path_a"]).name, Path(pair["path_b"]).name))


def _class_of(path: str) -> str:
    return Path(path).stem.removeprefix("copy_").rsplit("_", 1)[0]


def test_audit_finds_planted_copies_leaks_and_identical_files(cli: Callable[..., Any], planted: leaks.AuditStore,
                                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    found = cli("audit", "--split-field", "split", "--patient", "patient", "--csv", tmp_path / "pairs.csv",
                "--plot", tmp_path / "scores.png", "--store", planted.store, "--json")
    near = {_names(p) for p in found["pairs"] if p["kind"] == "near-duplicate"}
    wanted = {frozenset(copy[:2]): copy[2] for copy in planted.copies}
    recall = len(set(wanted) & near) / len(wanted)
    calibration = found["calibration"]
    print(f"audit: cosine {found['threshold']:.4f}, pixels {calibration['pixel_threshold']:.4f}, J "
          f"{calibration['youden_j']:.3f}, recall {recall:.2f} ({len(set(wanted) & near)}/{len(wanted)}), other near "
          f"pairs {len(near - set(wanted))}")
    assert recall >= 0.9
    assert {kind for pair, kind in wanted.items() if pair in near} == set(leaks.COPY_KINDS)
    assert all(_class_of(p["path_a"]) == _class_of(p["path_b"]) for p in found["pairs"] if p["kind"] != "exact")
    assert all(p["pixels"] >= calibration["pixel_threshold"] for p in found["pairs"])
    assert calibration["copies"] == 3 * planted.images and calibration["unreadable"] == 0
    exact = [p for p in found["pairs"] if p["kind"] == "exact"]
    assert planted.identical is not None and [_names(p) for p in exact] == [frozenset(planted.identical)]
    assert [leak["patient"] for leak in found["same_patient"]] == [planted.moved_patient]
    assert sorted(found["same_patient"][0]["splits"].values()) == [1, 2]
    assert found["summary"]["same_patient"] == 1 and found["summary"]["exact_duplicates"] == 1

    with (tmp_path / "pairs.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(found["pairs"]) and {r["kind"] for r in rows} == {"exact", "near-duplicate"}
    assert (tmp_path / "scores.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    text = cli("audit", "--store", planted.store, "--patient", "patient")
    assert "threshold cosine" in text.stdout and "1 patient in two splits" in text.stdout
    assert "pixel similarity" in text.stdout and "nearest neighbours of other patients" in text.stdout


def test_a_random_split_by_patient_reports_only_look_alikes_fewer_than_cosine_alone(
        clean: leaks.AuditStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Shape classes on both sides of the split. The tiny model puts distinct drawings of one class as
    close as a cropped copy, so the cosine shortlist keeps many; the pixel check drops most. What is left
    (measured: 0-3 pairs over split seeds 0-4, benchmarks/bench_learn_audit.py) are drawings whose
    pixels are alike too (black dots in one place, stripes of one period), never two classes."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from medsearch.api import Medsearch

    with Medsearch.open(clean.store) as ms:
        found = ms.learning.audit("split", patient="patient")
        assert found.calibration is not None
        cosine_alone = ms.learning.audit("split", patient="patient", threshold=found.threshold)
    print(f"random split: cosine {found.threshold:.4f}, pixels {found.calibration.pixel_threshold:.4f}, "
          f"{len(found.pairs)} look-alike pairs (cosine alone: {len(cosine_alone.pairs)})")
    assert found.summary()["exact_duplicates"] == 0 and found.summary()["same_patient"] == 0
    assert set(found.splits) == {"train", "test"}
    assert all(_class_of(p["path_a"]) == _class_of(p["path_b"]) for p in found.pairs)
    assert 4 * len(found.pairs) <= len(cosine_alone.pairs)  # the pixel check drops three quarters or more
    assert {_names(p) for p in found.pairs} <= {_names(p) for p in cosine_alone.pairs}


def test_a_split_with_nothing_alike_across_reports_nothing(cli: Callable[..., Any], classes_apart: leaks.AuditStore,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    found = cli("audit", "--patient", "patient", "--store", classes_apart.store, "--json")
    print(f"classes apart: threshold {found['threshold']:.4f}, pairs {len(found['pairs'])}")
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


def test_pixel_similarity_holds_for_copies_and_not_for_other_pictures() -> None:
    rng = np.random.default_rng(3)
    smooth = np.cumsum(np.cumsum(rng.normal(size=(60, 80)), 0), 1)
    pixels = ((smooth - smooth.min()) / np.ptp(smooth)).astype(np.float32)
    other = np.cumsum(np.cumsum(rng.normal(size=(60, 80)), 0), 1)
    original = grey(pixels)
    assert similarity(original, original) == pytest.approx(1.0, abs=1e-4)
    for copy in (window_shift(pixels, 0.05, 0.9), crop(pixels, 0.08, rng), reencode(pixels, 60)):
        assert similarity(original, grey(copy)) > 0.97
        assert similarity(grey(copy), original) == pytest.approx(similarity(original, grey(copy)))
    assert similarity(original, grey((other - other.min()) / np.ptp(other))) < 0.9
