"""Radiograph-like 16-bit images for the benchmarks: written as PNG files or as DICOM files (CR, 16-bit,
MONOCHROME2, uncompressed) so that decoding and preprocessing cost what real ones cost."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def radiograph(side: int, seed: int) -> np.ndarray:
    """(side, side) uint16: a bright elliptic body with rib-like bands, a dark background and noise."""
    rng = np.random.default_rng(seed)
    axis = np.linspace(-1.0, 1.0, side, dtype=np.float32)
    y, x = axis[:, None], axis[None, :]
    rx, ry = rng.uniform(0.6, 0.9), rng.uniform(0.7, 0.95)
    body = np.clip(1.0 - (x / rx) ** 2 - (y / ry) ** 2, 0.0, 1.0) ** 0.5
    bands = 0.15 * np.sin(y * rng.uniform(20, 30) + 4.0 * x * x) * (np.abs(x) > 0.15)
    image = body * (0.6 + bands) + rng.normal(0.0, 0.02, (side, side)).astype(np.float32)
    return (np.clip(image, 0.0, 1.0) * 65535).astype(np.uint16)


def write_pngs(folder: Path, count: int, side: int, seed: int = 0) -> list[Path]:
    """Write ``count`` 16-bit greyscale PNGs of ``side`` x ``side`` to ``folder``; return their paths."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(count):
        path = folder / f"radiograph{number:05d}.png"
        Image.fromarray(radiograph(side, seed + number)).save(path, compress_level=1)
        paths.append(path)
    return paths


def write_dicoms(folder: Path, count: int, side: int, seed: int = 10_000) -> list[Path]:
    """Write ``count`` single-frame 16-bit CR DICOMs (explicit VR little endian, with a window) to
    ``folder``; return their paths."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(count):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        path = folder / f"radiograph{number:05d}.dcm"
        ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.PatientID, ds.StudyInstanceUID = "CR", f"P{number:04d}", generate_uid()
        ds.SeriesInstanceUID = generate_uid()
        ds.Rows = ds.Columns = side
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.WindowCenter, ds.WindowWidth = 32768, 60000
        ds.PixelData = radiograph(side, seed + number).tobytes()
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
