"""The VOI (values of interest) step for greyscale DICOM frames, in two named modes.

``google`` (the default) gives the pixels Google's MedSigLIP serving code gives the model
(``Google-Health/medsiglip``, ``generic_dicom_handler.py``):

* CT: the window asked for, else the file's, else the VOI LUT Sequence, else centre 100 / width 2500 HU.
  Nothing after the window.
* Every other modality (CR and DX above all): the window asked for or the file's (or the VOI LUT
  Sequence), **then a min-max stretch of the result to [0, 1]**; without a window, a min-max stretch of
  the modality values; an 8-bit image without a window is kept as stored (divided by 255).

``robust``: as before version 3 of the preprocessing: windows as above with no stretch after them, and
without a window a 0.5-99.5 percentile stretch, which ignores a few outlying pixels (burned-in labels,
collimator edges). Its vectors differ from Google's served embeddings.

The window itself follows DICOM (``LINEAR``: ``center - 0.5 +- (width - 1) / 2``); Google's
``center +- width // 2`` differs by a few thousandths of the range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
from medsearch.errors import InvalidQuery, UnreadableFile
from medsearch.indexer import pixels as px

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

VoiMode = Literal["google", "robust"]
VOI_MODES: tuple[VoiMode, ...] = ("google", "robust")
CT_DEFAULT_WINDOW = (100.0, 2500.0)
"""The CT window (center, width) in HU when neither the request nor the file gives one."""


@dataclass(frozen=True)
class Voi:
    """The VOI transform for one frame.

    ``kind``: ``window`` (``center``, ``width``, ``function`` set), ``lut`` (the dataset's VOI LUT
    Sequence), ``minmax`` or ``percentile`` (a stretch of the frame's own range to [0, 1]) or ``bits``
    (8-bit values as stored, divided by 255). ``source``: where a window came from (``asked``, ``file``,
    ``default``). ``then_minmax``: a min-max stretch of the result follows (``google`` mode, not CT).
    """

    kind: Literal["window", "lut", "minmax", "percentile", "bits"]
    center: float = 0.0
    width: float = 1.0
    function: str = "LINEAR"
    source: str = ""
    then_minmax: bool = False

    def describe(self) -> str:
        """One short line for the store and ``info``: ``window 40/400 LINEAR (file) + minmax``."""
        if self.kind == "window":
            text = f"window {self.center:g}/{self.width:g} {self.function} ({self.source})"
        elif self.kind == "lut":
            text = "voi-lut (file)"
        elif self.kind == "percentile":
            text = "stretch p0.5-p99.5"
        elif self.kind == "minmax":
            text = "stretch minmax"
        else:
            text = "8-bit as stored"
        return text + (" + minmax" if self.then_minmax else "")


def finish(found: Voi | None, ds: Dataset, mode: VoiMode) -> Voi:
    """The VOI for a frame, given the window or LUT found for it (``found``: None when there is none)
    and the mode (see the module doc)."""
    is_ct = str(ds.get("Modality", "")).strip().upper() == "CT"
    if mode == "robust" or is_ct:
        if found is not None:
            return found
        if is_ct:
            return Voi("window", *CT_DEFAULT_WINDOW, source="default")
        return Voi("percentile")
    if found is not None:
        return Voi(found.kind, found.center, found.width, found.function, found.source, then_minmax=True)
    if int(ds.get("BitsAllocated") or 16) == 8:
        return Voi("bits")
    return Voi("minmax")


def apply(values: np.ndarray, voi: Voi, ds: Dataset) -> np.ndarray:
    """Float32 modality values (H, W), consumed -> float32 [0, 1] (H, W), as ``voi`` says."""
    if voi.kind == "window":
        values = px.apply_window(values, voi.center, voi.width, voi.function)
    elif voi.kind == "lut":
        values = apply_voi_lut(values, ds)
    elif voi.kind == "percentile":
        values = px.stretch(values)
    elif voi.kind == "bits":
        values = px.scale_to_unit(values, 0.0, 255.0)
    if voi.kind == "minmax" or voi.then_minmax:
        values = px.scale_to_unit(values, float(values.min()), float(values.max()))
    return values


def parse_voi(text: str) -> VoiMode:
    """``"google"`` or ``"robust"`` (any case) -> the mode. Raises InvalidQuery for another name."""
    key = text.strip().lower()
    if key not in VOI_MODES:
        raise InvalidQuery(f"unknown VOI mode {text!r} (known: {', '.join(VOI_MODES)})")
    return key  # type: ignore[return-value]


def apply_voi_lut(values: np.ndarray, ds: Dataset) -> np.ndarray:
    """The first VOI LUT Sequence item applied to modality values (float32, consumed), scaled from the
    table's own output range to [0, 1]. Not pydicom's ``apply_voi``: it indexes the table through an
    array of the output's dtype, so an 8-bit table of more than 256 entries wraps around."""
    item = lut_item(ds, "VOILUTSequence")
    if item is None:
        raise UnreadableFile("VOI LUT Sequence without a table")
    entries, first = int(item.LUTDescriptor[0]) or 2**16, int(item.LUTDescriptor[1])
    data = item.LUTData
    if isinstance(data, bytes):  # OW: 16-bit words in the dataset's byte order
        little = getattr(ds, "original_encoding", (None, True))[1] is not False
        table = np.frombuffer(data, dtype="<u2" if little else ">u2")
    else:
        table = np.atleast_1d(np.asarray(data, dtype=np.float64))
    return px.apply_lut(values, table[:entries].astype(np.float32), first)


def lut_item(ds: Dataset, keyword: str) -> Dataset | None:
    """The first item of a LUT sequence (``ModalityLUTSequence``, ``VOILUTSequence``) when it holds a
    table (LUT Descriptor and LUT Data); None for no sequence or an empty item, which some writers leave
    (pydicom's ``apply_modality_lut`` then fails on ``None``)."""
    try:
        sequence = ds.get(keyword)
        item = sequence[0] if sequence is not None and len(sequence) > 0 else None
    except (TypeError, ValueError, AttributeError, IndexError, KeyError):
        return None
    try:
        return item if item is not None and item.get("LUTDescriptor") and item.get("LUTData") else None
    except (TypeError, ValueError, AttributeError):
        return None


