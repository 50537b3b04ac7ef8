"""Filtered, thresholded, grouped and composed searches give exactly what brute force over the same
subset gives; zero-shot classification and evaluation through the CLI."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from medsearch.query.compose import Part, compose, parse_part
from medsearch.query.ranking import allowed_ids, grouped, iter_ranked, take
from medsearch.storage import vector_codec
from medsearch.storage.store import ModelRecord, Store
from medsearch.storage.writes import Batch, NewImage, write_batch

from tests.tiny_siglip import CLASS_CAPTIONS, make_caption_images

MODALITIES = ("CR", "DX", "CT", "MR")


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, np.ndarray, list[dict[str, Any]]]:
    """A store of 300 random unit vectors with modality, age and patient metadata, and the vectors as the store
    keeps them (brute force over the float32 originals swaps near ties)."""
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = vector_codec.decode_many(vector_codec.encode(vector) for vector in vectors)  # as the store keeps them
    meta = [{"modality": MODALITIES[i % 4], "patient_age": float(rng.integers(1, 90)) if i % 7 else None,
             "patient_key": f"p{i % 37}"} for i in range(300)]
    store = Store.open(tmp_path_factory.mktemp("synthetic"), create=True, writable=True)
    store.bind_model(ModelRecord("m", "r", 16, "p"))
    write_batch(store, Batch(images=[NewImage(f"/s/{i}.png", 0, 1, 1, str(i), vectors[i], meta[i])
                                     for i in range(300)]))
    return store, vectors, meta


def _matches(row: dict[str, Any], modalities: list[str], min_age: float) -> bool:
    return row["modality"] in modalities and row["patient_age"] is not None and row["patient_age"] >= min_age


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(modalities=st.lists(st.sampled_from(MODALITIES), min_size=1, max_size=3, unique=True),
       min_age=st.integers(0, 95), k=st.integers(1, 40), seed=st.integers(0, 10_000),
       min_score=st.one_of(st.none(), st.floats(-0.3, 0.5)))
def test_filtered_search_equals_brute_force(synthetic: Any, modalities: list[str], min_age: int, k: int,
                                            seed: int, min_score: float | None) -> None:
    store, vectors, meta = synthetic
    query = np.random.default_rng(seed).standard_normal(16).astype(np.float32)
    query /= np.linalg.norm(query)
    where = f"modality in ({', '.join(repr(m) for m in modalities)}) and patient_age >= {min_age}"
    allowed = allowed_ids(store, [where])
    got = take(iter_ranked(store, query, allowed, min_score), k)
    subset = [i for i, row in enumerate(meta) if _matches(row, modalities, min_age)]
    scores = vectors[subset] @ query
    order = [subset[j] for j in np.argsort(-scores)]
    expected = [i + 1 for i in order if min_score is None or float(vectors[i] @ query) >= min_score][:k]
    got_ids = [image_id for image_id, _score in got]
    assert len(set(got_ids)) == len(got_ids) and {i - 1 for i in got_ids} <= set(subset)
    # The same ranking; where two scores tie to float32 rounding, FAISS and numpy may order them apart.
    near_tie = 1e-6
    assert len(got) == len(expected) or _near(min_score, vectors, query, expected, got_ids, near_tie)
    for (image_id, score), wanted in zip(got, expected, strict=False):
        assert abs(score - float(vectors[image_id - 1] @ query)) < 1e-5
        assert image_id == wanted or abs(score - float(vectors[wanted - 1] @ query)) < near_tie


def _near(min_score: float | None, vectors: np.ndarray, query: np.ndarray, expected: list[int],
          got_ids: list[int], near_tie: float) -> bool:
    """Whether the one image that the two lists disagree on is at the threshold, to float32 rounding."""
    if min_score is None:
        return False
    extra = set(expected) ^ set(got_ids)
    return all(abs(float(vectors[i - 1] @ query) - min_score) < near_tie for i in extra)


def test_grouping_keeps_the_best_of_each_patient(synthetic: Any) -> None:
    store, vectors, meta = synthetic
    query = vectors[10]
    best = grouped(store, iter_ranked(store, query), "patient", k=5)
    scores = vectors @ query
    by_patient: dict[str, list[int]] = {}
    for i in np.argsort(-scores):
        by_patient.setdefault(meta[i]["patient_key"], []).append(int(i) + 1)
    expected = list(by_patient.values())[:5]
    assert [image_id for image_id, _s, _g in best] == [members[0] for members in expected]
    assert [group["size"] for _i, _s, group in best] == [len(members) for members in expected]
    assert best[0][2]["ids"] == expected[0][1:]


def test_composition_rule() -> None:
    vectors = {"a": np.array([1.0, 0.0], np.float32), "b": np.array([0.0, 1.0], np.float32)}
    parts = [parse_part("a"), parse_part("b@0.5", sign=-1.0)]
    assert parts[1] == Part("text", "b", -0.5)
    query = compose(parts, lambda texts: np.vstack([vectors[t] for t in texts]), lambda part: vectors["a"])
    np.testing.assert_allclose(query, np.array([1.0, -0.5]) / np.sqrt(1.25), rtol=1e-6)
    assert parse_part("image:ref.png@2") == Part("image", "ref.png", 2.0)


@pytest.fixture(scope="module")
def shapes(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], Path]:
    """A store of drawn shapes indexed with the trained tiny model; (store, path -> class, folder)."""
    from medsearch.cli import app
    from typer.testing import CliRunner

    folder = tmp_path_factory.mktemp("shapes")
    images = make_caption_images(folder / "images", per_class=6, seed=11)
    store = folder / "store"
    result = CliRunner().invoke(app, ["index", str(folder / "images"), "--store", str(store), "--model",
                                      str(trained_model), "--workers", "0", "--json"])
    assert result.exit_code == 0, result.output
    return store, {str(i.path.resolve()): i.class_name for i in images}, folder


def test_cli_thresholds_count_and_paging(cli: Callable[..., Any], shapes: Any) -> None:
    store, _classes, _folder = shapes
    everything = cli("search", "a red circle", "-k", "36", "--store", store, "--json")["results"]
    probs = [r["probability"] for r in everything]
    cut = probs[5]
    passing = [r for r in everything if r["probability"] >= cut - 1e-9]
    counted = cli("search", "a red circle", "--min-prob", cut - 1e-9, "--count", "--store", store, "--json")
    assert counted["count"] == len(passing)
    page = cli("search", "a red circle", "-k", "3", "--offset", "3", "--store", store, "--json")["results"]
    assert [r["id"] for r in page] == [r["id"] for r in everything[3:6]] and page[0]["rank"] == 4
    above = cli("search", "a red circle", "--min-score", everything[2]["score"], "-k", "10", "--store", store,
                "--json")["results"]
    assert [r["id"] for r in above] == [r["id"] for r in everything[:3]]


def test_cli_composed_query(cli: Callable[..., Any], shapes: Any) -> None:
    store, classes, _folder = shapes
    plain = cli("search", "a red circle", "-k", "6", "--store", store, "--json")["results"]
    red = plain[0]["id"]
    mixed = cli("search", "a blue square", "--like", f"id:{red}@3", "-k", "1", "--store", store, "--json")
    top = mixed["results"][0]
    assert classes[top["path"]] == "red_circle" and "probability" not in top
    pushed = cli("search", "a red circle", "--like", "a blue square@2", "--unlike", "a red circle@0.5",
                 "-k", "3", "--store", store, "--json")["results"]
    assert all(classes[r["path"]] == "blue_square" for r in pushed)


def test_cli_classify_save_and_filter(cli: Callable[..., Any], shapes: Any, tmp_path: Path) -> None:
    store, classes, _folder = shapes
    labels = tmp_path / "shapes.toml"
    labels.write_text("".join(f'[{name}]\nprompts = {json.dumps(list(captions[:2]))}\n'
                              for name, captions in CLASS_CAPTIONS.items()))
    out = cli("classify", "--all", "--labels-file", labels, "--save-as", "shapes", "--exclusive", "--store", store,
              "--json")
    assert "not a diagnosis" in out["note"]
    right = sum(max(r["probabilities"], key=r["probabilities"].get) == classes[r["path"]] for r in out["results"])
    assert right / len(out["results"]) >= 0.8
    reds = {r["path"] for r in out["results"] if r["probabilities"]["red_circle"] > 0.5}
    found = cli("search", "anything", "--where", "shapes.red_circle > 0.5", "-k", "100", "--store", store, "--json")
    assert {r["path"] for r in found["results"]} == reds and reds
    strict = tmp_path / "strict.toml"  # thresholds no sigmoid reaches: nothing is ever present
    strict.write_text("".join(f'[{name}]\nprompts = ["{captions[0]}"]\nthreshold = 1.0\n'
                              for name, captions in CLASS_CAPTIONS.items()))
    text = cli("classify", next(iter(classes)), "--labels-file", strict, "--store", store).output
    assert "present: none  [needs human review: " in text


def test_cli_evaluate_matches_sklearn(cli: Callable[..., Any], shapes: Any, tmp_path: Path) -> None:
    from sklearn.metrics import roc_auc_score

    store, classes, folder = shapes
    truth = folder / "truth.csv"
    names = list(CLASS_CAPTIONS)
    truth.write_text("path," + ",".join(names) + "\n" + "".join(
        f"{path}," + ",".join(str(int(c == n)) for n in names) + "\n" for path, c in classes.items()))
    labels = tmp_path / "shapes.toml"
    labels.write_text("".join(f'[{n}]\nprompts = ["{CLASS_CAPTIONS[n][0]}"]\n' for n in names))
    plot = tmp_path / "roc.png"
    report = cli("evaluate", "--truth", truth, "--labels-file", labels, "-k", "5", "--plot", plot, "--store", store,
                 "--json")
    scores = cli("classify", *classes, "--labels-file", labels, "--store", store, "--json")["results"]
    for name in names:
        expected = roc_auc_score([classes[r["path"]] == name for r in scores],
                                 [r["probabilities"][name] for r in scores])
        assert report["labels"][name]["auc"] == pytest.approx(expected, abs=1e-6)
        assert report["labels"][name]["auc"] > 0.8
    assert report["images"] == len(classes) and report["mean_average_precision"] > 0.7
    assert plot.stat().st_size > 1000


def test_cli_evaluate_joins_the_truth_as_import_metadata_does(cli: Callable[..., Any], shapes: Any,
                                                              tmp_path: Path) -> None:
    """The truth by file name, by a named key column, or from imported fields: the same figures."""
    store, classes, folder = shapes
    names = list(CLASS_CAPTIONS)
    labels = tmp_path / "shapes.toml"
    labels.write_text("".join(f'[{n}]\nprompts = ["{CLASS_CAPTIONS[n][0]}"]\n' for n in names))
    by_path, by_name, by_key = (tmp_path / name for name in ("path.csv", "name.csv", "key.csv"))
    for target, column, key in ((by_path, "path", str), (by_name, "file", lambda p: Path(p).name),
                                (by_key, "imagename", lambda p: Path(p).name)):
        target.write_text(f"{column}," + ",".join(names) + "\n" + "".join(
            f"{key(path)}," + ",".join(str(int(c == n)) for n in names) + "\n" for path, c in classes.items()))
    shutil.copy(by_name, folder / "truth_by_name.csv")  # file names are looked up among the indexed files

    def aucs(*args: Any) -> dict[str, float]:
        report = cli("evaluate", *args, "--labels-file", labels, "-k", "5", "--store", store, "--json")
        assert report["images"] == len(classes) and report["missing"] == []
        return {name: report["labels"][name]["auc"] for name in names}

    expected = aucs("--truth", by_path)
    assert aucs("--truth", folder / "truth_by_name.csv") == expected
    assert aucs("--truth", by_key, "--key", "imagename", "--root", folder) == expected
    renames = [arg for n in names for arg in ("--rename", f"{n}=truth_{n}")]
    cli("import-metadata", by_key, "--key", "imagename", "--root", folder, *renames, "--store", store)
    assert aucs("--truth-fields", ",".join(f"truth_{n}={n}" for n in names)) == expected
    refused = cli("evaluate", "--truth-fields", "nope", "--labels-file", labels, "--store", store, "--json", expect=2)
    assert "no imported field 'nope'" in refused["error"]["message"]
    both = cli("evaluate", "--labels-file", labels, "--store", store, "--json", expect=2)
    assert "--truth-fields" in both["error"]["message"]


def test_filter_results_are_reused_until_the_next_write(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s", create=True, writable=True)
    store.bind_model(ModelRecord("m", "r", 4, "p"))
    unit = np.array([1, 0, 0, 0], dtype=np.float32)
    write_batch(store, Batch(images=[NewImage(f"/c/{i}.png", 0, 1, 1, str(i), unit, {"modality": "CT"})
                                     for i in range(3)]))
    first = allowed_ids(store, ["modality = 'CT'"])
    assert allowed_ids(store, ["modality = 'CT'"]) is first  # no SQL the second time
    write_batch(store, Batch(images=[NewImage("/c/new.png", 0, 1, 1, "n", unit, {"modality": "CT"})]))
    assert allowed_ids(store, ["modality = 'CT'"]).tolist() == [1, 2, 3, 4]
    store.close()
