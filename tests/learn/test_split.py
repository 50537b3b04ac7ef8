"""Patient-level splits: DICOMs whose PatientID the test writes (the keyed patient hash), and drawn shapes
with a sidecar patient column; ratios, stratification, seeds, the saved field and the export."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from medsearch.errors import InvalidQuery
from medsearch.learn.split import assign_splits, parse_ratios

from tests.conftest import pydicom_file
from tests.learn.conftest import run_cli

PATIENT_SIZES = (1, 1, 2, 2, 2, 3, 3, 4, 1, 2, 3, 1, 2, 1, 2)  # 30 images of 15 patients


@pytest.fixture(scope="module")
def dicom_store(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """CT_small copies with written PatientIDs (P00..P14, PATIENT_SIZES images each) and shifted pixels."""
    import pydicom
    from pydicom.uid import generate_uid

    root = tmp_path_factory.mktemp("split-dicoms")
    patient_of: dict[str, str] = {}
    for patient, size in enumerate(PATIENT_SIZES):
        for image in range(size):
            ds = pydicom.dcmread(pydicom_file("CT_small.dcm"))
            ds.PatientID, ds.PatientName = f"P{patient:02d}", f"Doe^{patient}"
            ds.SOPInstanceUID, ds.StudyInstanceUID = generate_uid(), generate_uid()
            ds.PixelData = (ds.pixel_array + 7 * image + patient).astype(ds.pixel_array.dtype).tobytes()
            name = f"p{patient:02d}_{image}.dcm"
            (root / "images").mkdir(exist_ok=True)
            ds.save_as(root / "images" / name)
            patient_of[name] = f"P{patient:02d}"
    run_cli("index", root / "images", "--store", root / "store", "--model", tiny_model, "--workers", "0")
    return {"store": root / "store", "patient_of": patient_of}


def _field(store: Path, name: str) -> dict[str, str]:
    """{file name: value} of a text field, read through the store."""
    from medsearch.storage.models import Image, ImageField
    from medsearch.storage.store import Store
    from sqlalchemy import select

    with Store.open(store) as opened, opened.read_session() as session:
        rows = session.execute(select(Image.path, ImageField.text).join(ImageField, ImageField.image_id == Image.id)
                               .where(ImageField.name == name))
        return {Path(p).name: str(v) for p, v in rows}


def test_split_by_patient_respects_ratios_within_one_patient_and_never_shares_one(
        cli: Callable[..., Any], dicom_store: dict[str, Any]) -> None:
    store, patient_of = dicom_store["store"], dicom_store["patient_of"]
    made = cli("split", "split", "--by", "patient", "--ratios", "60/20/20", "--seed", "3", "--store", store, "--json")
    assigned = _field(store, "split")
    assert len(assigned) == 30 and set(assigned.values()) == {"train", "validation", "test"}
    for patient in set(patient_of.values()):
        assert len({assigned[f] for f, p in patient_of.items() if p == patient}) == 1
    biggest = max(PATIENT_SIZES)
    for name, share in zip(("train", "validation", "test"), (0.6, 0.2, 0.2), strict=True):
        assert abs(made["images"][name] - share * 30) <= biggest
    assert made["images"] == dict(Counter(assigned.values())) | made["images"]
    assert sum(made["groups"].values()) == 15

    again = cli("split", "split", "--by", "patient", "--ratios", "60/20/20", "--seed", "3", "--store", store, "--json")
    assert _field(store, "split") == assigned and again["images"] == made["images"]
    seeded = []
    for seed in range(4, 8):
        cli("split", "other", "--ratios", "60/20/20", "--seed", str(seed), "--store", store, "--json")
        seeded.append(_field(store, "other"))
    assert any(other != assigned for other in seeded)

    counted = cli("search", "x", "--where", "split = 'train'", "--count", "--store", store, "--json")
    assert counted["count"] == made["images"]["train"]


def test_split_of_pngs_by_a_sidecar_column_is_stratified(cli: Callable[..., Any], shapes: dict[str, Any]) -> None:
    store = shapes["store"]
    made = cli("split", "fold", "--by", "patient", "--ratios", "50/50", "--stratify", "red_circle", "--seed", "1",
               "--store", store, "--json")
    assert made["names"] == ["train", "test"] and made["images"] == {"train": 60, "test": 60}
    assert made["strata"] == {"train": {"0.0": 50, "1.0": 10}, "test": {"0.0": 50, "1.0": 10}}  # number fields
    assigned = _field(store, "fold")
    patient_splits: dict[str, set[str]] = {}
    for row in shapes["rows"]:
        patient_splits.setdefault(row["patient"], set()).add(assigned[row["file"]])
    assert all(len(s) == 1 for s in patient_splits.values())


def test_a_cohort_is_split_and_its_export_carries_the_split(cli: Callable[..., Any], shapes: dict[str, Any],
                                                            tmp_path: Path) -> None:
    store = shapes["store"]
    cli("cohort", "create", "reds", "--where", "red_circle = 1", "--store", store, "--json")
    made = cli("split", "reds_split", "--cohort", "reds", "--ratios", "80/20", "--seed", "4", "--store", store,
               "--json")
    assert sum(made["images"].values()) == 20 and made["scope"] == ["cohort:reds"]
    cli("cohort", "export", "reds", "--format", "csv", "--output", tmp_path / "reds.csv", "--columns", "reds_split",
        "--store", store)
    with (tmp_path / "reds.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 20 and Counter(r["reds_split"] for r in rows) == Counter(made["images"])
    shown = cli("split", "reds_split", "--cohort", "nope", "--store", store, "--json", expect=6)
    assert shown["error"]["code"] == "not_found"

    kept = {"by": "patient", "ratios": [0.8, 0.2], "names": ["train", "test"], "stratify": None, "seed": 4,
            "missing": "refuse", "images": made["images"], "groups": made["groups"], "without_group": 0}
    assert cli("cohort", "show", "reds", "--store", store, "--json")["splits"] == {"reds_split": kept}
    exported = json.loads((tmp_path / "reds.csv.manifest.json").read_text())
    assert exported["splits"] == {"reds_split": kept}


def test_refreshing_a_cohort_remakes_its_split(cli: Callable[..., Any], shapes: dict[str, Any]) -> None:
    store = shapes["store"]
    cli("cohort", "create", "blues", "--where", "blue_square = 1", "--store", store, "--json")
    made = cli("split", "blue_split", "--cohort", "blues", "--ratios", "50/50", "--seed", "2", "--store", store,
               "--json")
    assigned = _field(store, "blue_split")
    cli("split", "blue_split", "--ratios", "30/70", "--seed", "8", "--store", store, "--json")  # the whole store
    assert len(_field(store, "blue_split")) == 120
    refreshed = cli("cohort", "refresh", "blues", "--store", store, "--json")
    assert refreshed["run"] == 2 and refreshed["splits"]["blue_split"]["images"] == made["images"]
    assert refreshed["splits"]["blue_split"]["seed"] == 2 and _field(store, "blue_split") == assigned
    counts = cli("cohort", "show", "blues", "--run", "1", "--store", store, "--json")["splits"]
    assert counts == refreshed["splits"]


def test_assign_splits_keeps_groups_whole_for_any_seed() -> None:
    for seed in range(30):
        rng = np.random.default_rng(seed)
        groups = rng.integers(0, 25, 120)
        strata = (groups % 4 == 0).astype(int)
        chosen = assign_splits(groups, strata, (0.7, 0.15, 0.15), seed)
        sizes = Counter(groups.tolist())
        for group in sizes:
            assert len(set(chosen[groups == group].tolist())) == 1
        for stratum in (0, 1):
            rows = strata == stratum
            biggest = max(sizes[g] for g in set(groups[rows].tolist()))
            for split_number, share in enumerate((0.7, 0.15, 0.15)):
                assert abs((chosen[rows] == split_number).sum() - share * rows.sum()) <= biggest
        assert (assign_splits(groups, strata, (0.7, 0.15, 0.15), seed) == chosen).all()


@pytest.mark.parametrize("text", ["70/abc", "100", "70/0/30", "-1/2"])
def test_bad_ratios_are_refused(text: str) -> None:
    with pytest.raises(InvalidQuery, match="--ratios"):
        parse_ratios(text)
