"""A store for the viewer's tests: a CT series of 8 slices (16-bit, Rescale Intercept -1024, Hounsfield
values: air, a soft-tissue body, two lungs, a bone spine, a bright cross on slices 3-5; files named in
the reverse of their InstanceNumber order), a 12-bit chest radiograph (DX, CHEST, its own window, a
patient), and PNGs of the tiny model's drawn classes. Indexed with the trained tiny SigLIP."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tests.tiny_siglip import CLASS_NAMES, draw_class_image
from tests.volumes import uid

CT_SLICES = 8
CROSS_SLICES = (3, 4, 5)
"""InstanceNumbers of the CT slices with the bright cross."""
STUDY, SERIES = uid("viewer", "study"), uid("viewer", "series")


@dataclass
class ViewerStore:
    store: Path
    ct: list[Path] = field(default_factory=list)
    """The CT files by InstanceNumber (1 first)."""
    radiograph: Path | None = None
    pngs: list[Path] = field(default_factory=list)


def ct_slice(number: int, side: int = 96) -> np.ndarray:
    """(side, side) int16 Hounsfield units of slice ``number`` (1-based)."""
    yy, xx = np.mgrid[:side, :side].astype(np.float32) / side
    hu = np.full((side, side), -1000.0, dtype=np.float32)
    hu[(xx - 0.5) ** 2 / 0.2 + (yy - 0.5) ** 2 / 0.15 < 1] = 40.0
    lung = 0.05 + 0.004 * number
    hu[((xx - 0.32) ** 2 + (yy - 0.48) ** 2 < lung) | ((xx - 0.68) ** 2 + (yy - 0.48) ** 2 < lung)] = -800.0
    hu[(xx - 0.5) ** 2 + (yy - 0.78) ** 2 < 0.004] = 700.0
    if number in CROSS_SLICES:
        hu[(np.abs(xx - 0.5) < 0.05) & (np.abs(yy - 0.45) < 0.3)] = 1200.0
        hu[(np.abs(yy - 0.45) < 0.05) & (np.abs(xx - 0.5) < 0.3)] = 1200.0
    rng = np.random.default_rng(number)
    return np.round(hu + rng.normal(0, 8, hu.shape)).astype(np.int16)


def _dataset(modality: str, sop: str, series: str, rows: np.ndarray, bits: int) -> Any:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, DigitalXRayImageStorageForPresentation, ExplicitVRLittleEndian

    sop_class = CTImageStorage if modality == "CT" else DigitalXRayImageStorageForPresentation
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop_class, sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = sop_class, sop, modality
    ds.StudyInstanceUID = STUDY if modality == "CT" else uid("cxr")
    ds.SeriesInstanceUID, ds.StudyDate = series, "20240105"
    ds.Rows, ds.Columns = rows.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, bits, bits - 1
    ds.PixelRepresentation = 1 if rows.dtype == np.int16 else 0
    ds.PixelData = rows.tobytes()
    return ds


def write_ct(folder: Path, slices: int = CT_SLICES, side: int = 96) -> list[Path]:
    """The CT series (``slices`` of ``side`` pixels); returns its paths by InstanceNumber."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(1, slices + 1):
        hu = ct_slice(number, side)
        ds = _dataset("CT", uid(SERIES, number), SERIES, hu, 16)
        ds.InstanceNumber, ds.BodyPartExamined = number, "CHEST"
        ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, -2.5 * number], [1, 0, 0, 0, 1, 0]
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        ds.PixelData = (hu.astype(np.int32) + 1024).astype(np.int16).tobytes()
        path = folder / f"slice{slices - number:03d}.dcm"  # the names run against the order
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def write_radiograph(folder: Path) -> Path:
    """A 12-bit DX chest radiograph with its own window and a patient."""
    yy, xx = np.mgrid[:320, :256].astype(np.float32)
    lungs = ((xx - 80) ** 2 / 45**2 + (yy - 150) ** 2 / 110**2 < 1) | (
        (xx - 176) ** 2 / 45**2 + (yy - 150) ** 2 / 110**2 < 1)
    values = np.where(lungs, 700.0, 2600.0) + 600 * np.sin(yy / 9.0) * lungs
    rows = np.clip(values, 0, 4095).astype(np.uint16)
    ds = _dataset("DX", uid("cxr", "sop"), uid("cxr", "series"), rows, 12)
    ds.BodyPartExamined, ds.ViewPosition, ds.PatientID = "CHEST", "PA", "VIEWER-1"
    ds.WindowCenter, ds.WindowWidth = 1800, 3000
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "chest.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def viewer_store(root: Path, embedder: Any) -> ViewerStore:
    """Write and index every image under ``root``; returns where they are."""
    from tests.api_fixtures import index_store

    images = root / "images"
    made = ViewerStore(root / "store", write_ct(images / "ct"), write_radiograph(images / "cxr"))
    rng = np.random.default_rng(3)
    for name in CLASS_NAMES:
        path = images / "png" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        draw_class_image(name, rng).save(path)
        made.pngs.append(path)
    index_store(made.store, images, embedder)
    return made
