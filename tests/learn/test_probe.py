"""Few-shot probes end to end through the CLI on drawn shapes: held-out AUC, patient-grouped folds, the
saved field in --where and cohorts, and refusal on another model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from medsearch.errors import InvalidQuery
from medsearch.labels import metrics
from medsearch.labels.interval import grouped_auc_interval
from medsearch.learn.crossval import grouped_folds

from tests.tiny_siglip import CLASS_NAMES

ROUND = ("red_circle", "black_dot")


def _pick(shapes: dict[str, Any], ids: dict[str, int], classes: tuple[str, ...], count: int) -> str:
    """ids:... of ``count`` training images spread over ``classes`` (the first of each class first)."""
    pool = sorted((int(img.path.stem[-3:]), classes.index(img.class_name), img.path.name) for img in shapes["images"]
                  if img.class_name in classes and int(img.path.stem[-3:]) < 10)
    return "ids:" + ",".join(str(ids[name]) for _n, _c, name in pool[:count])


def _field(store: Path, name: str) -> dict[int, float]:
    from medsearch.api import Medsearch
    from medsearch.learn.selection import all_ids
    from medsearch.storage.queries import group_values

    with Medsearch.open(store) as ms:
        return {i: float(v) for i, v in group_values(ms.store, all_ids(ms.ctx).tolist(), name).items()}


def test_probe_on_ten_examples_per_class_beats_chance_on_held_out_images(
        cli: Callable[..., Any], shapes: dict[str, Any], ids_by_file: Callable[[Path], dict[str, int]]) -> None:
    """The label "round" (red circles and black dots) is no caption the model was trained on."""
    store, ids = shapes["store"], ids_by_file(shapes["store"])
    others = tuple(name for name in CLASS_NAMES if name not in ROUND)
    report = cli("probe", "train", "round", "--positives", _pick(shapes, ids, ROUND, 10), "--negatives",
                 _pick(shapes, ids, others, 10), "--prompt", "a round shape", "--store", store, "--json")
    assert (report["positives"], report["negatives"]) == (10, 10)
    low, high = report["cv_auc_ci"]
    assert 0.0 <= low <= report["cv_auc"] <= high <= 1.0 and 0.0 <= report["zero_shot_auc"] <= 1.0

    applied = cli("probe", "apply", "round", "--save-as", "round_probe", "--store", store, "--json")
    assert applied["images"] == 120 and applied["field"] == "round_probe"
    scores = _field(store, "round_probe")
    held = [r for r in shapes["rows"] if r["half"] == "heldout"]
    truth = np.array([r["red_circle"] or r["black_dot"] for r in held])
    held_auc = metrics.roc_auc(truth, [scores[ids[r["file"]]] for r in held])
    zero_shot = _zero_shot_auc(store, "a round shape", [ids[r["file"]] for r in held], truth)
    print(f"probe round: held-out AUC {held_auc:.3f} vs zero-shot {zero_shot:.3f}; cv {report['cv_auc']:.3f} "
          f"{report['cv_auc_ci']}, zero-shot on the cv pool {report['zero_shot_auc']:.3f}")
    assert held_auc >= 0.85

    made = cli("cohort", "create", "probed", "--where", "round_probe >= 0.5 and half = 'heldout'", "--store", store,
               "--json")
    classes = {ids[img.path.name]: img.class_name for img in shapes["images"]}
    assert made["count"] >= 10 and sum(classes[m["id"]] in ROUND for m in made["members"]) >= 0.8 * made["count"]
    listed = cli("probe", "list", "--store", store, "--json")["probes"]
    assert [p["name"] for p in listed] == ["round"] and listed[0]["model_revision"]


def _zero_shot_auc(store: Path, prompt: str, ids: list[int], truth: np.ndarray) -> float:
    from medsearch.api import Medsearch
    from medsearch.learn.selection import vectors_of

    with Medsearch.open(store) as ms:
        return metrics.roc_auc(truth, vectors_of(ms.ctx, np.array(ids)) @ ms.text_vectors([prompt])[0])


def test_cross_validation_never_puts_a_patient_in_two_folds(
        cli: Callable[..., Any], shapes: dict[str, Any], ids_by_file: Callable[[Path], dict[str, int]]) -> None:
    store, ids = shapes["store"], ids_by_file(shapes["store"])
    report = cli("probe", "train", "blue", "--positives", "field:blue_square", "--folds", "5", "--store", store,
                 "--json")
    patient_of = {ids[r["file"]]: r["patient"] for r in shapes["rows"]}
    folds = report["fold_ids"]
    assert report["folds"] == len(folds) == 5 and sorted(i for f in folds for i in f) == sorted(patient_of)
    seen = [{patient_of[i] for i in fold} for fold in folds]
    assert all(not (a & b) for n, a in enumerate(seen) for b in seen[n + 1:])
    assert report["negatives"] == 100 and report["groups"] == 60


def test_grouped_folds_keep_groups_whole_and_stratify() -> None:
    for seed in range(20):
        rng = np.random.default_rng(seed)
        groups = rng.integers(0, 15, 80)
        labels = (groups % 3 == 0).astype(np.int64)  # one label per group
        folds = grouped_folds(labels, groups, 4, seed)
        for group in np.unique(groups):
            assert len(set(folds[groups == group].tolist())) == 1
        assert all(0 < labels[folds == f].sum() < (folds == f).sum() for f in np.unique(folds))
    with pytest.raises(InvalidQuery, match="two groups per class"):
        grouped_folds(np.array([1, 1, 0, 0]), np.array(["a", "a", "b", "c"]), 5, 0)


def test_auc_interval_holds_the_auc_and_is_wider_when_a_patients_images_agree() -> None:
    rng = np.random.default_rng(1)
    groups = np.arange(400) // 10  # 40 patients of 10 images, one label and one shared offset each
    labels = groups % 2
    scores = 0.8 * labels + rng.normal(0, 1.0, 40)[groups] + rng.normal(0, 0.3, 400)
    auc = metrics.roc_auc(labels, scores)
    by_patient = grouped_auc_interval(labels, scores, groups)
    by_image = grouped_auc_interval(labels, scores, np.arange(400))
    assert by_patient[0] < auc < by_patient[1] and by_image[0] < auc < by_image[1]
    assert by_patient[1] - by_patient[0] > 2 * (by_image[1] - by_image[0])


def test_bad_selections_are_one_line_errors(cli: Callable[..., Any], shapes: dict[str, Any]) -> None:
    store = shapes["store"]
    both = cli("probe", "train", "x", "--positives", "ids:1,2", "--negatives", "ids:2,3", "--store", store, "--json",
               expect=2)
    assert "both positive and negative" in both["error"]["message"]
    missing = cli("probe", "train", "x", "--positives", "ids:1,999999", "--store", store, "--json", expect=6)
    assert "999999" in missing["error"]["message"]
    one_patient = cli("probe", "train", "x", "--positives", "ids:1,2", "--store", store, "--json", expect=2)
    assert "two groups per class" in one_patient["error"]["message"]
    assert cli("probe", "apply", "nope", "--store", store, "--json", expect=6)["error"]["code"] == "not_found"
    bad = cli("probe", "train", "x", "--positives", "where:nonsense >", "--store", store, "--json", expect=2)
    assert bad["error"]["code"] == "invalid_query"
