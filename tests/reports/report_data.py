"""Test data for reports, written with pydicom: chest radiographs of four studies (each with a patient's
name, ID and accession number), structured reports (Basic, Enhanced, Comprehensive Text SR) whose text holds
identifiers too, and CSVs of reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from tests.indexer.test_dicom import file_dataset

CR_CLASS = "1.2.840.10008.5.1.4.1.1.1"
BASIC_SR, ENHANCED_SR, COMPREHENSIVE_SR = ("1.2.840.10008.5.1.4.1.1.88.11", "1.2.840.10008.5.1.4.1.1.88.22",
                                           "1.2.840.10008.5.1.4.1.1.88.33")
STUDIES = {  # study uid -> (accession number, patient ID, patient name)
    "1.2.826.0.1.1": ("ACC100001", "MRN77310001", "Quimby^Harold"),
    "1.2.826.0.1.2": ("ACC100002", "MRN77310002", "Vasquez^Rosalind"),
    "1.2.826.0.1.3": ("ACC100003", "MRN77310003", "Okonkwo^Bartholomew"),
    "1.2.826.0.1.4": ("ACC100004", "MRN77310004", "Lindqvist^Ottilie"),
}
REPORTS = {  # study uid -> report text (identifiers in it on purpose)
    "1.2.826.0.1.1": "Patient Harold Quimby, MRN77310001, examined 2022-08-14 by Dr Zebulon Pettigrew. "
                     "Moderate right pleural effusion. No pneumothorax.",
    "1.2.826.0.1.2": "Comparison 2021-02-17 (Rosalind Vasquez). Small left apical pneumothorax. "
                     "No pleural effusion.",
    "1.2.826.0.1.3": "Bartholomew Okonkwo, phone 555-0199. No pneumothorax but small right pleural effusion. "
                     "Possible left lower lobe pneumonia.",
    "1.2.826.0.1.4": "Ottilie Lindqvist, 14 Elm Street. Lungs are clear. No pleural effusion or pneumothorax.",
}
IDENTIFIERS = ("Quimby", "Harold", "Pettigrew", "Zebulon", "Rosalind", "Vasquez", "Okonkwo", "Bartholomew",
               "Lindqvist", "Ottilie", "MRN773", "ACC10000", "2022-08-14", "2021-02-17", "555-0199",
               "Elm Street")
"""Strings of the test data that must never reach the database unless the report text is kept."""


def _file_dataset(sop_class: str, study: str, **attributes: Any) -> Dataset:
    ds = file_dataset(sop_class)
    accession, patient_id, name = STUDIES.get(study, ("ACC999", "MRN999", "Nobody^None"))
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, generate_uid()
    ds.AccessionNumber, ds.PatientID, ds.PatientName = accession, patient_id, name
    ds.StudyDate, ds.PatientBirthDate = "20231105", "19500101"
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return ds


def write_cr(path: Path, study: str, seed: int) -> Path:
    """A 32 x 32 chest radiograph of ``study``, pixels from ``seed``."""
    ds = _file_dataset(CR_CLASS, study, Modality="CR", BodyPartExamined="CHEST")
    pixels = np.random.default_rng(seed).integers(0, 4096, (32, 32), dtype=np.uint16)
    ds.set_pixel_data(pixels, "MONOCHROME2", 12)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def text_item(text: str) -> Dataset:
    item = Dataset()
    item.RelationshipType, item.ValueType, item.TextValue = "CONTAINS", "TEXT", text
    return item


def container(name: str, items: list[Dataset]) -> Dataset:
    item = Dataset()
    item.RelationshipType, item.ValueType, item.ContinuityOfContent = "CONTAINS", "CONTAINER", "SEPARATE"
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "121071", "DCM", name
    item.ConceptNameCodeSequence = Sequence([code])
    item.ContentSequence = Sequence(items)
    return item


def write_sr(path: Path, study: str, paragraphs: list[str], sop_class: str = BASIC_SR,
             own_study: str | None = None) -> Path:
    """An SR of ``study``: a root CONTAINER holding a "Findings" CONTAINER of one TEXT item per paragraph.
    ``own_study``: the SR's own StudyInstanceUID, when it differs from the study it references (the
    evidence sequence names ``study``)."""
    ds = _file_dataset(sop_class, own_study or study, Modality="SR")
    ds.ValueType, ds.ContinuityOfContent, ds.CompletionFlag = "CONTAINER", "SEPARATE", "COMPLETE"
    ds.ContentSequence = Sequence([container("Findings", [text_item(p) for p in paragraphs])])
    if own_study:
        evidence = Dataset()
        evidence.StudyInstanceUID = study
        ds.CurrentRequestedProcedureEvidenceSequence = Sequence([evidence])
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def sentences(text: str) -> list[str]:
    """The report split at its full stops, as paragraphs of an SR."""
    return [part.strip() + "." for part in text.split(". ") if part.strip(". ")]


def write_archive(folder: Path) -> Path:
    """Two images per study; SRs for studies 1 (Basic), 2 (Enhanced, referencing its study from an SR
    study of its own) and 3 (Comprehensive); study 4 has no SR (its report comes from a CSV)."""
    for number, study in enumerate(STUDIES, start=1):
        for view in range(2):
            write_cr(folder / f"study{number}" / f"image{view}.dcm", study, seed=number * 10 + view)
    uids = list(STUDIES)
    write_sr(folder / "study1" / "report.dcm", uids[0], sentences(REPORTS[uids[0]]), BASIC_SR)
    write_sr(folder / "reports" / "study2-sr.dcm", uids[1], sentences(REPORTS[uids[1]]), ENHANCED_SR,
             own_study="1.2.826.0.1.99")
    write_sr(folder / "study3" / "report.dcm", uids[2], sentences(REPORTS[uids[2]]), COMPREHENSIVE_SR)
    return folder
