"""Synthetic volumes for the series/study tests: real multi-file DICOM series (Secondary Capture, 8-bit
RGB, proper Study/Series/SOP UIDs, PatientID, StudyDate) of drawn slices, a class of tests/tiny_siglip.py
on a few slices of a series only, the other slices plain noisy backgrounds."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from tests.tiny_siglip import CLASS_NAMES, draw_class_image


@dataclass
class SeriesSpec:
    """One written series: its UIDs, patient, date, the class on some slices (None: none) and its files."""

    series_uid: str
    study_uid: str
    patient_id: str
    study_date: str
    label: str | None
    paths: list[Path] = field(default_factory=list)


def uid(*parts: object) -> str:
    """A deterministic DICOM UID for ``parts``."""
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=[str(p) for p in parts]))


def background(rng: np.random.Generator, size: tuple[int, int] = (64, 64)) -> Image.Image:
    """A slice without any drawn class: dark grey with noise, as the drawn classes' backgrounds."""
    grey = int(rng.integers(0, 61))
    noise = rng.normal(0.0, 6.0, size=(size[1], size[0], 3))
    return Image.fromarray(np.clip(grey + noise, 0, 255).astype(np.uint8), mode="RGB")


def write_slice(path: Path, image: Image.Image, spec: SeriesSpec, number: int) -> Path:
    """Write one RGB slice of ``spec`` as a DICOM file (InstanceNumber ``number``)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage

    pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
    from pydicom.uid import UID

    sop = UID(uid(spec.series_uid, number))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = SecondaryCaptureImageStorage, sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, sop
    ds.StudyInstanceUID, ds.SeriesInstanceUID = spec.study_uid, spec.series_uid
    ds.PatientID, ds.PatientName, ds.StudyDate = spec.patient_id, f"Test^{spec.patient_id}", spec.study_date
    ds.Modality, ds.SeriesDescription, ds.InstanceNumber = "OT", f"volume {spec.label}", number
    ds.Rows, ds.Columns = pixels.shape[:2]
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = pixels.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_series(folder: Path, spec: SeriesSpec, slices: int, marked: int, rng: np.random.Generator) -> SeriesSpec:
    """Write ``slices`` slices of ``spec``; the middle ``marked`` ones show its class."""
    start = (slices - marked) // 2
    for number in range(slices):
        drawn = spec.label is not None and start <= number < start + marked
        image = draw_class_image(spec.label, rng) if drawn and spec.label else background(rng)
        spec.paths.append(write_slice(folder / spec.series_uid / f"{number:03d}.dcm", image, spec, number + 1))
    return spec


def write_volume_set(folder: Path, per_class: int = 3, blanks: int = 4, slices: int = 12, marked: int = 2,
                     seed: int = 0) -> list[SeriesSpec]:
    """``per_class`` series per drawn class plus ``blanks`` series without any, ``slices`` slices each,
    ``marked`` of them showing the class. Two series per study, three studies per patient, each study
    of a patient on its own date."""
    rng = np.random.default_rng(seed)
    labels: list[str | None] = [name for name in CLASS_NAMES for _ in range(per_class)] + [None] * blanks
    order = rng.permutation(len(labels))
    specs = []
    for position, label_index in enumerate(order):
        study, patient = position // 2, position // 6
        date = f"20{10 + study % 3 * 4 + patient % 2:02d}0{1 + study % 9}15"
        spec = SeriesSpec(uid("series", seed, position), uid("study", seed, study), f"P{patient:03d}", date,
                          labels[int(label_index)])
        specs.append(write_series(folder, spec, slices, marked, rng))
    return specs
