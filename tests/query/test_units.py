"""Series and study ranking on synthetic volumes (real multi-file DICOM series of drawn slices, a class on
2 of 12 slices) with the tiny trained SigLIP: text at unit series, similar series, the timeline."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from medsearch.api import Medsearch
from medsearch.errors import InvalidQuery, NotFound

from tests.tiny_siglip import CLASS_CAPTIONS, CLASS_NAMES
from tests.volumes import SeriesSpec


@pytest.fixture
def ms(volumes: dict[str, Any]) -> Any:
    with Medsearch.open(volumes["store"], embedder=volumes["embedder"]) as engine:
        yield engine


def labels(specs: list[SeriesSpec]) -> dict[str, str | None]:
    return {spec.series_uid: spec.label for spec in specs}


def test_a_text_query_at_unit_series_returns_the_series_with_the_class_first(ms: Any, volumes: dict) -> None:
    truth, per_class = labels(volumes["specs"]), Counter(spec.label for spec in volumes["specs"])
    precisions = []
    for name in CLASS_NAMES:
        results = ms.search(CLASS_CAPTIONS[name][0], unit="series", k=per_class[name])
        assert len({r.key for r in results}) == len(results) == per_class[name]  # one row per series
        precisions.append(sum(truth[r.key] == name for r in results) / len(results))
        best = results[0]
        assert best.size == 12 and best.image_id in best.ids and best.modality == "OT"
        assert best.image_score == pytest.approx(best.score, abs=1e-5)  # max: the best slice is the score
    assert sum(precisions) / len(precisions) >= 0.8, precisions


def test_every_text_method_ranks_units_and_top3_is_the_mean_of_the_three_best_slices(ms: Any) -> None:
    import numpy as np
    from medsearch.storage import units

    query = ms.composed("a red circle")
    for method in ("mean", "max", "top3"):
        results = ms.search("a red circle", unit="series", k=4, unit_method=method)
        assert [r.rank for r in results] == [1, 2, 3, 4]
        assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    best = ms.search("a red circle", unit="series", k=1, unit_method="top3")[0]
    slices = np.vstack([v for _i, v in units.members(ms.store, "series", [best.key])[best.key]])
    assert best.score == pytest.approx(float(np.mean(np.sort(slices @ query)[-3:])), abs=1e-5)


def test_a_study_query_returns_one_row_per_study(ms: Any, volumes: dict) -> None:
    results = ms.search("a blue square", unit="study", k=5)
    studies: dict[str, list[str | None]] = {spec.study_uid: [] for spec in volumes["specs"]}
    for spec in volumes["specs"]:
        studies[spec.study_uid].append(spec.label)
    assert len({r.key for r in results}) == 5 and all(r.size == 12 * len(studies[r.key]) for r in results)
    assert "blue_square" in studies[results[0].key]


def test_similar_series_finds_the_series_that_share_the_class(ms: Any, volumes: dict) -> None:
    truth, hits, total = labels(volumes["specs"]), 0, 0
    for spec in volumes["specs"]:
        if spec.label is None:
            continue
        results = ms.similar(spec.series_uid, unit="series", k=2)
        assert spec.series_uid not in {r.key for r in results}  # the query series itself is left out
        hits += sum(truth[r.key] == spec.label for r in results)
        total += len(results)
    assert hits / total >= 0.8, hits / total


def test_similar_from_an_image_id_uses_its_series(ms: Any, volumes: dict) -> None:
    spec = next(s for s in volumes["specs"] if s.label)
    image_id = ms.search(CLASS_CAPTIONS[spec.label][0], unit="series", k=30)
    own = next(r for r in image_id if r.key == spec.series_uid)
    by_id = ms.similar(own.image_id, unit="series", k=3)
    by_uid = ms.similar(spec.series_uid, unit="series", k=3)
    assert [r.key for r in by_id] == [r.key for r in by_uid]


def test_sort_by_date_orders_thresholded_units_newest_first(ms: Any) -> None:
    results = ms.search("a yellow triangle", unit="series", k=50, min_score=-1.0, sort="date")
    dates = [r.study_date for r in results]
    assert len(results) == 22 and dates == sorted(dates, reverse=True) and [r.rank for r in results][:2] == [1, 2]
    with pytest.raises(InvalidQuery, match="threshold"):
        ms.search("a yellow triangle", unit="series", sort="date")


def test_count_units_counts_series_and_studies(ms: Any, volumes: dict) -> None:
    specs = volumes["specs"]
    assert ms.count(unit="series") == len(specs)
    assert ms.count(unit="study") == len({s.study_uid for s in specs})
    assert ms.count("a red circle", unit="series", min_score=1.0) <= len(specs)
    with pytest.raises(InvalidQuery, match="min_score is a cosine between -1 and 1"):
        ms.count("a red circle", unit="series", min_score=2.0)


def test_the_timeline_gives_one_patients_studies_in_date_order_and_nobody_elses(ms: Any, volumes: dict) -> None:
    specs = volumes["specs"]
    spec = specs[0]
    mine = {s.study_uid: s.study_date for s in specs if s.patient_id == spec.patient_id}
    line = ms.timeline(spec.series_uid, "a white cross")
    assert [s.study_instance_uid for s in line.studies] == sorted(mine, key=lambda study: mine[study])
    dates = [s.study_date.replace("-", "") for s in line.studies]
    assert dates == sorted(mine.values())
    assert sum(s.current for s in line.studies) == 1
    assert next(s for s in line.studies if s.current).study_instance_uid == spec.study_uid
    others = {s.paths[0].name for s in specs if s.patient_id != spec.patient_id}
    ids = {i for s in line.studies for i in s.ids}
    assert len(ids) == 12 * sum(1 for s in specs if s.patient_id == spec.patient_id)
    assert not {ms.image_path(i) for i in ids} & {str(p) for s in specs if s.patient_id != spec.patient_id
                                                  for p in s.paths} and others
    text = str(line.as_dict())
    assert spec.patient_id not in text and "Test^" not in text  # the identity never shows


def test_the_timeline_of_an_image_id_equals_that_of_its_study(ms: Any, volumes: dict) -> None:
    spec = volumes["specs"][3]
    first = ms.timeline(spec.study_uid)
    image_id = first.studies[0].ids[0]
    assert [s.study_instance_uid for s in ms.timeline(image_id).studies] == \
        [s.study_instance_uid for s in first.studies]


def test_bad_units_targets_and_methods_are_refused(ms: Any) -> None:
    with pytest.raises(InvalidQuery, match="unknown unit"):
        ms.search("a red circle", unit="patient")
    with pytest.raises(InvalidQuery, match="unknown unit method"):
        ms.search("a red circle", unit="series", unit_method="late")
    with pytest.raises(NotFound):
        ms.timeline("1.2.3.4.5")
    with pytest.raises(NotFound):
        ms.similar("1.2.3.4.5", unit="series")
