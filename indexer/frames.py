"""What a reader hands to the rest of the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

WindowSpec = tuple[float, float] | str | None
"""``(center, width)``, a preset name (``lung``, ``mediastinum``, ``bone``, ``brain``, ``soft-tissue``),
or None for the file's own window / the modality's default."""


@dataclass(frozen=True)
class ReadOptions:
    """How files are turned into pixels and metadata. Picklable: it travels to worker processes."""

    window: WindowSpec = None
    voi: Literal["google", "robust"] = "google"
    """Greyscale DICOM: ``google`` (the pixels Google's MedSigLIP serving code gives the model) or
    ``robust`` (a percentile stretch without a window, nothing after a window); see ``medsearch.indexer.voi``."""
    frames: Literal["middle", "all"] = "middle"
    frame: int | None = None
    """Read only this 1-based frame of a multi-frame file (``preview``: one frame decoded, not all)."""
    keep_identity: bool = False
    patient_key_secret: bytes | None = None
    max_pixels: int = 250_000_000
    max_file_bytes: int = 2 * 1024**3
    draft_size: int | None = None
    """JPEGs larger than twice this are decoded at a reduced scale (DCT scaling) no smaller than it:
    several times faster and smaller in memory, for pixels that are resized to the model's size anyway."""


@dataclass
class Frame:
    """One image ready for preprocessing.

    ``pixels``: float32 in [0, 1], shape (H, W) for greyscale or (H, W, 3) for colour; bright means
    bright as a radiologist would see it (windowed, MONOCHROME1 inverted). ``frame_number``: 0 for a
    single-frame file, else the 1-based DICOM frame number. ``metadata``: values for the typed
    ``medsearch.storage.models.Image`` columns (``modality``, ``study_instance_uid``...), snake_case keys.
    """

    pixels: np.ndarray
    frame_number: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)


class FrameList(list[Frame]):
    """A reader's frames, and ``damaged``: one line per frame of a multi-frame file that could not be
    decoded while the others were (``frame 17: cannot decode pixel data: ...``)."""

    def __init__(self, frames: list[Frame] | None = None, damaged: list[str] | None = None) -> None:
        super().__init__(frames or [])
        self.damaged: list[str] = damaged or []


def read_key(options: ReadOptions, window: tuple[float, float] | None) -> str:
    """The options that decide a greyscale DICOM's pixels, as stored with each image
    (``voi=google;window=file``); ``window``: ``options.window`` through ``medsearch.indexer.windows.parse_window``.
    Indexing again with another key re-embeds the image. (``frames`` is not part of it: which frames a
    file gave shows in its rows, and another ``--frames`` does not change a frame's pixels.)"""
    asked = "file" if window is None else f"{window[0]:g},{window[1]:g}"
    return f"voi={options.voi};window={asked}"


def parse_read_key(key: str) -> dict[str, str]:
    """``read_key``'s text -> ``{"voi": ..., "window": ...}`` (unknown parts ignored)."""
    parts = dict(part.split("=", 1) for part in key.split(";") if "=" in part)
    return {name: parts[name] for name in ("voi", "window") if name in parts}
