"""An independent computation of the model input Google's MedSigLIP serving code gives for a DICOM
(``Google-Health/medsiglip``: ``generic_dicom_handler._norm_cxr_imaging`` / ``_norm_ct_imaging``, then
``predictor._InputImageIter``), written here from the steps it takes, in numpy on pydicom's arrays,
for the fidelity tests and ``benchmarks/bench_fidelity.py``. It shares no code with ``indexer``.

Also: ``variant``, real pydicom pixel data rewritten as another kind of file (no window, signed, 8-bit,
DX, MONOCHROME2), for the cases pydicom's own files do not cover.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

U16 = 65535


def google_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """Their ``_window``: clip to ``center +- width // 2``, map linearly to 0..65535, round, uint16."""
    half = width // 2
    low, high = center - half, center + half
    return np.round(np.interp(np.clip(values, low, high), (low, high), (0, U16))).astype(np.uint16)


def _first(value: Any) -> float:
    from pydicom.multival import MultiValue

    return float(value[0]) if isinstance(value, (MultiValue, list, tuple)) else float(value)


def file_window(ds: Any) -> tuple[float, float] | None:
    """The file's Window Center / Width (first pair: Google refuses several, medsearch takes the first)."""
    if "WindowCenter" in ds and "WindowWidth" in ds:
        return _first(ds.WindowCenter), _first(ds.WindowWidth)
    return None


def cxr_pixels(ds: Any, window: tuple[float, float] | None = None) -> np.ndarray:
    """CR / DX (and, by the same rule, other non-CT modalities): uint8 or uint16 (H, W)."""
    from pydicom.pixels import apply_modality_lut

    stored = ds.pixel_array
    values = apply_modality_lut(stored, ds)
    window = window or file_window(ds)
    if window is not None:
        values = google_window(values, *window)
    if values.dtype == np.float64:
        values = values.astype(stored.dtype)
    if values.dtype != np.uint8:
        if values.dtype.kind != "u":  # shift signed data to unsigned
            values = (values.astype(np.int64) - values.min()).astype(np.uint16)
        values = np.interp(values, (values.min(), values.max()), (0, np.iinfo(values.dtype).max)).astype(values.dtype)
    if str(ds.PhotometricInterpretation) == "MONOCHROME1":
        values = np.iinfo(values.dtype).max - values
    return values


def ct_pixels(ds: Any, window: tuple[float, float] | None = None) -> np.ndarray:
    """CT: Rescale Slope / Intercept to HU, the window (asked, file, else 100 / 2500): uint16 (H, W)."""
    values = ds.pixel_array.astype(np.float64)
    if "RescaleSlope" in ds and "RescaleIntercept" in ds:
        values = values * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    window = window or file_window(ds) or (100.0, 2500.0)
    out = google_window(values, *window)
    if str(ds.PhotometricInterpretation) == "MONOCHROME1":
        out = U16 - out
    return out


def google_grey(ds: Any, window: tuple[float, float] | None = None) -> np.ndarray:
    """The handler's output for a greyscale DICOM: uint8 or uint16 (H, W)."""
    if str(ds.get("Modality", "")).upper() == "CT":
        return ct_pixels(ds, window)
    return cxr_pixels(ds, window)


def to_unit(pixels: np.ndarray) -> np.ndarray:
    """The predictor's first step: divide by the dtype's maximum -> float32 [0, 1]."""
    return pixels.astype(np.float32) / float(np.iinfo(pixels.dtype).max)


def pad_square(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> centred zero-padded square, the extra row/column at the bottom/right."""
    height, width = image.shape[:2]
    if height < width:
        extra = width - height
        return np.pad(image, ((extra // 2, extra - extra // 2), (0, 0), (0, 0)))
    if width < height:
        extra = height - width
        return np.pad(image, ((0, 0), (extra // 2, extra - extra // 2), (0, 0)))
    return image


def google_model_input(ds: Any, window: tuple[float, float] | None = None, size: int = 448) -> np.ndarray:
    """(3, size, size) float32: their DICOM handler, [0, 1], 3 channels, padded square, then
    ``SiglipImageProcessor(do_rescale=False, size=size)``."""
    from transformers import SiglipImageProcessor

    unit = to_unit(google_grey(ds, window))[:, :, np.newaxis]
    square = pad_square(np.concatenate([unit, unit, unit], axis=-1))
    processor = SiglipImageProcessor(do_rescale=False, size={"height": size, "width": size})
    out = processor.preprocess([square], data_format="channels_first", input_data_format="channels_last",
                               return_tensors="np")
    return np.asarray(out["pixel_values"][0], dtype=np.float32)


def agreement(ours: np.ndarray, theirs: np.ndarray) -> tuple[float, float]:
    """(Pearson r, mean |difference|) of two model inputs of the same shape."""
    a, b = ours.astype(np.float64).ravel(), theirs.astype(np.float64).ravel()
    return float(np.corrcoef(a, b)[0, 1]), float(np.mean(np.abs(a - b)))


def variant(source: Path, out: Path, kind: str) -> Path:
    """Real pixel data from ``source`` rewritten as ``kind``: ``no-window``, ``signed`` (stored values
    shifted to signed 16-bit, intercept keeping the modality values, no window), ``8-bit`` (top 8 of 12 bits, no
    window), ``dx`` (Modality DX) or ``monochrome2``. Written uncompressed."""
    from pydicom import dcmread
    from pydicom.uid import ExplicitVRLittleEndian

    ds = dcmread(source)
    stored = ds.pixel_array
    if kind in ("no-window", "8-bit", "signed"):
        for keyword in ("WindowCenter", "WindowWidth", "VOILUTFunction"):
            if keyword in ds:
                delattr(ds, keyword)
    if kind == "signed":
        shift = 2 ** (int(ds.BitsStored) - 1)
        signed = (stored.astype(np.int32) - shift).astype(np.int16)
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = float(ds.get("RescaleIntercept", 0)) + shift * float(ds.get("RescaleSlope", 1))
        ds.PixelData = signed.tobytes()
    elif kind == "8-bit":
        eight = (stored >> max(0, int(ds.BitsStored) - 8)).astype(np.uint8)
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        for keyword in ("RescaleSlope", "RescaleIntercept"):
            if keyword in ds:
                delattr(ds, keyword)
        ds.PixelData = eight.tobytes()
    elif kind == "dx":
        ds.Modality = "DX"
    elif kind == "monochrome2":
        ds.PhotometricInterpretation = "MONOCHROME2"
    elif kind != "no-window":
        raise ValueError(kind)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(out, enforce_file_format=True)
    return out
