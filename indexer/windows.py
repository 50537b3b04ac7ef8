"""From a decoded DICOM frame to display pixels: the named window presets, the choice of VOI (values
of interest) transform for a frame, and ``render``, which applies the ``medsearch.indexer.pixels`` steps in order.

A window is ``(center, width)`` in the units of the modality LUT's output (Hounsfield units for CT).
The choice, in order: the window asked for in ``ReadOptions.window``; else the file's own Window
Center / Width (first value when several, per frame for enhanced multi-frame files); else the file's
VOI LUT Sequence; else the modality's default (CT: center 100 / width 2500 HU; other modalities: a
stretch of the frame's own range). ``medsearch.indexer.voi`` says what follows in each VOI mode.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from medsearch.errors import InvalidQuery, UnreadableFile
from medsearch.indexer import pixels as px
from medsearch.indexer.frames import WindowSpec
from medsearch.indexer.voi import Voi, VoiMode, finish, lut_item
from medsearch.indexer.voi import apply as apply_voi

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
    "soft-tissue": (40.0, 400.0),
}
"""Named CT windows, ``name -> (center, width)`` in Hounsfield units."""

VOI_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")


def parse_window(spec: WindowSpec) -> tuple[float, float] | None:
    """``ReadOptions.window`` -> ``(center, width)``, or None for "the file's own / the default".

    Raises ``InvalidQuery`` for an unknown preset name or a width that is not a positive finite
    number. Call it when parsing options, to fail once rather than on every file.
    """
    if spec is None:
        return None
    if isinstance(spec, str):
        key = spec.strip().lower().replace("_", "-").replace(" ", "-")
        if key not in WINDOW_PRESETS:
            names = ", ".join(WINDOW_PRESETS)
            raise InvalidQuery(f"unknown window preset {spec!r} (known: {names})")
        return WINDOW_PRESETS[key]
    try:
        center, width = (float(value) for value in spec)
    except (TypeError, ValueError) as exc:
        raise InvalidQuery(f"a window is (center, width) or a preset name, not {spec!r}") from exc
    if not (math.isfinite(center) and math.isfinite(width) and width > 0):
        raise InvalidQuery(f"window width must be positive and finite, got {spec!r}")
    return center, width


def choose_voi(ds: Dataset, frame_index: int, asked: tuple[float, float] | None,
               mode: VoiMode = "google") -> Voi:
    """The VOI transform for frame ``frame_index`` (0-based) of a greyscale dataset (see module doc and
    ``medsearch.indexer.voi``); ``asked``: the window from the options, already through ``parse_window``."""
    return finish(_found_voi(ds, frame_index, asked), ds, mode)


def _found_voi(ds: Dataset, frame_index: int, asked: tuple[float, float] | None) -> Voi | None:
    """The window asked for, else the frame's or file's own window, else its VOI LUT; None when none."""
    if asked is not None:
        return Voi("window", *asked, source="asked")
    for source in frame_sources(ds, frame_index, "FrameVOILUTSequence"):
        own = _file_window(source)
        if own is not None:
            return own
    return Voi("lut") if _has_voi_lut(ds) else None


def frame_sources(ds: Dataset, frame_index: int, keyword: str) -> list[Dataset]:
    """Where a per-frame attribute may live, most specific first: the frame's item of the Per-frame
    Functional Groups (``keyword`` macro), the Shared Functional Groups, then the dataset itself."""
    sources: list[Dataset] = []
    for group_keyword, index in (
        ("PerFrameFunctionalGroupsSequence", frame_index),
        ("SharedFunctionalGroupsSequence", 0),
    ):
        groups = _item(ds, group_keyword, index)
        macro = _item(groups, keyword, 0) if groups is not None else None
        if macro is not None:
            sources.append(macro)
    sources.append(ds)
    return sources


def _item(ds: Dataset, keyword: str, index: int) -> Dataset | None:
    try:
        sequence = ds.get(keyword)
        return sequence[index] if sequence is not None and len(sequence) > index else None
    except (TypeError, ValueError, AttributeError, IndexError, KeyError):
        return None


def _file_window(source: Dataset) -> Voi | None:
    """The first Window Center / Width pair of ``source``, or None when absent or unusable."""
    try:
        center = _first_number(source.get("WindowCenter"))
        width = _first_number(source.get("WindowWidth"))
    except (TypeError, ValueError):  # an unparsable DS value
        return None
    if center is None or width is None:
        return None
    function = str(source.get("VOILUTFunction") or "LINEAR").strip().upper()
    if function not in VOI_FUNCTIONS:
        function = "LINEAR"
    if width <= 0 or (function == "LINEAR" and width < 1):
        return None
    return Voi("window", center, width, function, source="file")


def _first_number(value: Any) -> float | None:
    """A DS value (single or multi-valued) -> its first value as a finite float, else None."""
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        value = value[0] if len(value) else None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _has_voi_lut(ds: Dataset) -> bool:
    return lut_item(ds, "VOILUTSequence") is not None


def render(raw: np.ndarray, ds: Dataset, frame_index: int, window: tuple[float, float] | None,
           mode: VoiMode = "google") -> tuple[np.ndarray, str | None]:
    """One decoded frame -> (display pixels, float32 in [0, 1], (H, W) or (H, W, 3); the VOI used, as
    ``Voi.describe`` says, None for colour).

    Greyscale: modality LUT / rescale -> VOI (``choose_voi``, ``medsearch.indexer.voi``) -> MONOCHROME1 inverted.
    A window or VOI LUT that saturates the whole frame (every pixel black or white, though the frame's values
    differ) falls back to the mode's stretch (google: min-max, robust: percentiles), and the VOI recorded
    says so (``window 40/1 LINEAR (file) + minmax saturates the image; stretch minmax instead``).
    Colour: scaled by Bits Stored (RGB) or by the palette's entry size (PALETTE COLOR)."""
    from pydicom.pixels import apply_color_lut

    photometric = str(ds.get("PhotometricInterpretation", "")).strip()
    if photometric == "PALETTE COLOR":
        rgb = px.to_three_channels(apply_color_lut(raw, ds))
        return px.scale_by_bits(rgb, _palette_bits(ds, rgb)), None
    if raw.ndim == 3:
        return px.scale_by_bits(px.to_three_channels(raw), int(ds.get("BitsStored") or ds.BitsAllocated)), None
    values = _modality_values(raw, ds, frame_index)
    voi = choose_voi(ds, frame_index, window, mode)
    low, high = float(values.min()), float(values.max())
    values = apply_voi(values, voi, ds)
    described = voi.describe()
    if high > low and voi.kind in ("window", "lut") and float(values.min()) == float(values.max()):
        fallback = Voi("minmax" if mode == "google" else "percentile")
        values = apply_voi(_modality_values(raw, ds, frame_index), fallback, ds)
        described = f"{described} saturates the image; {fallback.describe()} instead"
    if photometric == "MONOCHROME1":
        px.invert(values)
    return values, described


def _modality_values(raw: np.ndarray, ds: Dataset, frame_index: int) -> np.ndarray:
    """Stored values -> modality units, float32 (Modality LUT Sequence, else per-frame or file-level
    Rescale Slope / Intercept, else unchanged)."""
    from pydicom.pixels import apply_modality_lut

    if lut_item(ds, "ModalityLUTSequence") is not None:  # an empty item (some writers leave one) is ignored
        return apply_modality_lut(raw, ds).astype(np.float32, order="C")
    for source in frame_sources(ds, frame_index, "PixelValueTransformationSequence"):
        slope, intercept = source.get("RescaleSlope"), source.get("RescaleIntercept")
        if slope is not None or intercept is not None:
            slope = float(slope) if slope not in (None, "") else 1.0
            intercept = float(intercept) if intercept not in (None, "") else 0.0
            if not (np.isfinite(slope) and np.isfinite(intercept)) or slope == 0:
                raise UnreadableFile("invalid Rescale Slope / Intercept")
            return px.rescale(raw, slope, intercept)
    return px.rescale(raw)


def _palette_bits(ds: Dataset, rgb: np.ndarray) -> int:
    """Bits per palette entry: the descriptor's 8 or 16 (8-bit entries may be stored in 16 bits)."""
    descriptor = ds.get("RedPaletteColorLookupTableDescriptor")
    if descriptor is not None and int(descriptor[2]) == 8:
        return 8
    return 8 * rgb.dtype.itemsize
