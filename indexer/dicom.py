"""DICOM through pydicom (a basic reader; the medical pixel pipeline refines it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from indexer.frames import Frame, ReadOptions
from storage.errors import UnreadableFile


class DicomReader:
    name = "dicom"

    def accepts(self, path: Path, head: bytes) -> bool:
        return path.suffix.lower() == ".dcm" or head[128:132] == b"DICM"

    def read(self, path: Path, options: ReadOptions) -> list[Frame]:
        import pydicom
        from pydicom.errors import InvalidDicomError
        from pydicom.pixels import apply_modality_lut, apply_voi_lut

        try:
            dataset = pydicom.dcmread(path)
        except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
            raise UnreadableFile(f"not a readable DICOM file: {exc}") from exc
        if "PixelData" not in dataset:
            raise UnreadableFile("DICOM file has no pixel data")
        try:
            array = dataset.pixel_array
        except Exception as exc:
            raise UnreadableFile(f"cannot decode DICOM pixels: {exc}") from exc
        frames = int(getattr(dataset, "NumberOfFrames", 1) or 1)
        if frames > 1:
            array = array[frames // 2]
        array = apply_voi_lut(apply_modality_lut(array, dataset), dataset).astype(np.float32)
        low, high = float(array.min()), float(array.max())
        array = (array - low) / (high - low) if high > low else np.zeros_like(array)
        if dataset.get("PhotometricInterpretation") == "MONOCHROME1":
            array = 1.0 - array
        metadata = {
            "file_format": "dicom",
            "width": int(dataset.Columns),
            "height": int(dataset.Rows),
            "modality": dataset.get("Modality"),
        }
        return [Frame(pixels=array if array.ndim == 2 else array[:, :, :3], metadata=metadata)]
