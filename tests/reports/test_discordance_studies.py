"""A discordance cohort of studies: DICOM studies of drawn shapes (two images each, written with pydicom),
reports keyed by StudyInstanceUID, two of them made wrong; ``--unit study`` finds those two studies, each
with all its images, and exports their UIDs."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.uid import generate_uid

from tests.indexer.test_dicom import write_dicom
from tests.reports.shapes_reports import SHARP, report_text
from tests.tiny_siglip import draw_class_image

CLASSES = ("red_circle", "blue_square", "yellow_triangle")
WRONG_STUDIES = {("red_circle", 1): "No red circle. No blue square.",
                 ("blue_square", 2): "A blue square. A red circle."}


def _studies(folder: Path) -> dict[tuple[str, int], str]:
    """Four studies per class, two RGB images each, one patient per study; {(class, n): StudyInstanceUID}."""
    rng = np.random.default_rng(8)
    uids = {}
    for name in CLASSES:
        for n in range(4):
            study, series = generate_uid(), generate_uid()
            for image in range(2):
                pixels = np.asarray(draw_class_image(name, rng), dtype=np.uint8)
                write_dicom(folder / f"{name}_{n}_{image}.dcm", pixels, "RGB", StudyInstanceUID=study,
                            SeriesInstanceUID=series, PatientID=f"{name}-{n}", Modality="OT", InstanceNumber=image + 1)
            uids[(name, n)] = study
    return uids


def test_a_study_cohort_of_wrong_reports(cli: Callable[..., Any], trained_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "dicom"
    folder.mkdir()
    uids = _studies(folder)
    store, sharp, reports = tmp_path / "store", tmp_path / "sharp.toml", tmp_path / "reports.csv"
    sharp.write_text(SHARP)
    cli("index", folder, "--store", store, "--model", trained_model, "--workers", "0", "--json")
    with reports.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["study_uid", "report"])
        for (name, n), uid in uids.items():
            writer.writerow([uid, WRONG_STUDIES.get((name, n), report_text(f"{name}_{n:03d}"))])
    imported = cli("reports", "import", reports, "--label-set", sharp, "--store", store, "--json")
    assert imported["stored"] == 12 and imported["bad"] == 0

    made = cli("cohort", "create", "studies", "--discordant", "red_circle", "--unit", "study", "--labels-file", sharp,
               "--store", store, "--json")
    assert {m["key"] for m in made["members"]} == {uids[key] for key in WRONG_STUDIES}
    assert made["unit"] == "study" and made["count"] == 2 and made["images"] == 4
    by_uid = {m["key"]: m for m in made["members"]}
    assert by_uid[uids[("red_circle", 1)]]["report"] == "negative"
    assert by_uid[uids[("blue_square", 2)]]["disagrees"] == "report-positive"
    assert all(m["size"] == 2 and len(m["ids"]) == 2 for m in made["members"])
    assert [step["count"] for step in made["funnel"][:2]] == [24, 12]  # images with a label, then their studies

    exported = tmp_path / "uids.csv"
    cli("cohort", "export", "studies", "--format", "uids", "--output", exported, "--store", store, "--json")
    assert {row["study_instance_uid"] for row in csv.DictReader(exported.open())} == set(by_uid)
    again = cli("cohort", "refresh", "studies", "--store", store, "--json")
    assert [m["key"] for m in again["members"]] == [m["key"] for m in made["members"]]
    assert again["members"][0]["report"] in ("positive", "negative")
