"""What the viewer's HTTP routes call: ``Viewer.picture`` (a PNG of a stored image at a window and size)
and ``Viewer.info`` (what the page needs to show it: the series' slices in order with their scores for
a query, the presets, the UIDs, the default label set). Files are read only through ``guard`` (the
server's ``served_path``), decoded in a capped worker process kept between requests
(``medsearch.viewer.workers``: address space and time limits, as indexing has), and the decoded frame is
kept at full bit depth in a small LRU cache, so that a new window costs a resize and a PNG, not a decode."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from medsearch.errors import InvalidQuery, MedsearchError, NotFound, UnreadableFile
from medsearch.indexer.windows import WINDOW_PRESETS
from medsearch.indexer.workers import Limits
from medsearch.storage.store import Store
from medsearch.viewer.pixels import MAX_VIEW_SIZE, ViewFrame, png_of, read_view_frame, served_picture, windowed
from medsearch.viewer.series import Header, ordered_slices, read_header, series_rows, slice_scores
from medsearch.viewer.workers import KeptWorkers

CACHE_BYTES = 512 * 1024**2
CT_START_PRESET = "soft-tissue"
"""The window a CT without its own opens at."""
LABEL_SETS = {"cxr-findings": ("CR", "DX"), "skin-lesions": ("XC", "ES", "GM")}
"""The built-in label set offered first for an image of these modalities (a chest body part also picks
``cxr-findings`` for a plain radiograph); any other image starts with none."""
Window = tuple[float, float] | None


class Viewer:
    """The viewer over ``store``; ``guard(stored path) -> Path`` refuses paths outside the indexed folders
    (raises Forbidden/NotFound); ``max_pixels`` caps a decoded picture (UnreadableFile past it)."""

    def __init__(self, store: Store, guard: Callable[[str], Path], max_pixels: int,
                 limits: Limits | None = None, cache_bytes: int = CACHE_BYTES) -> None:
        self.store = store
        self.guard = guard
        self.max_pixels = max_pixels
        self.limits = limits or Limits(seconds=60.0, memory_bytes=4 * 1024**3)
        self.cache_bytes = cache_bytes
        self.decodes = 0
        self._frames: OrderedDict[tuple[int, str, int], ViewFrame] = OrderedDict()
        self._lock = threading.Lock()
        self.workers = KeptWorkers(self.limits, workers=2)

    def picture(self, image_id: int, size: int, window: Window) -> tuple[bytes, Window]:
        """(PNG bytes of the image at ``window`` (None: its starting window), at most ``size`` pixels a
        side; the window used, None for colour). Raises NotFound, Forbidden, UnreadableFile, InvalidQuery."""
        if not 16 <= size <= MAX_VIEW_SIZE:
            raise InvalidQuery(f"size must be between 16 and {MAX_VIEW_SIZE}")
        frame = self.frame(image_id)
        used = None if frame.window is None else (window or frame.window)
        pixels = served_picture(self.store, image_id, windowed(frame, used))
        return png_of(pixels, size), used

    def frame(self, image_id: int) -> ViewFrame:
        """The image's frame at full bit depth (cached). Raises NotFound, Forbidden, UnreadableFile."""
        from medsearch.indexer.read_back import image_source

        stored, frame_number, options = image_source(self.store, image_id)
        path = self._path(stored)
        key = (image_id, str(path), path.stat().st_mtime_ns)
        with self._lock:
            if key in self._frames:
                self._frames.move_to_end(key)
                return self._frames[key]
        start = start_window(read_header(path)) if _is_dicom_path(path) else None
        capped = replace(options, max_pixels=min(options.max_pixels, self.max_pixels))
        frame = self._decode((path, capped, frame_number, start))
        with self._lock:
            self.decodes += 1
            self._frames[key] = frame
            while sum(f.nbytes for f in self._frames.values()) > self.cache_bytes and len(self._frames) > 1:
                self._frames.popitem(last=False)
        return frame

    def info(self, image_id: int, metadata: dict[str, Any], query: np.ndarray | None) -> dict[str, Any]:
        """The page's facts for image ``image_id`` (``metadata``: its stored metadata): ``slices`` of its
        series in order (``id``, ``number``, ``position``, ``score`` for the unit ``query`` or null),
        ``index`` of the image among them, ``presets`` (CT: the indexer's named windows, in HU),
        ``uids``, ``has_patient``, ``label_set`` (a built-in name or null). Raises NotFound."""
        rows = series_rows(self.store, image_id)
        slices = ordered_slices(rows, self._header_of)
        scores = slice_scores(self.store, [s.id for s in slices], query) if query is not None else {}
        return {
            "id": image_id,
            "slices": [{"id": s.id, "number": s.number, "position": s.position, "score": scores.get(s.id)}
                       for s in slices],
            "index": next(i for i, s in enumerate(slices) if s.id == image_id),
            "presets": presets_for(metadata),
            "uids": {name: metadata.get(name) for name in
                     ("study_instance_uid", "series_instance_uid", "sop_instance_uid") if metadata.get(name)},
            "has_patient": bool(metadata.get("patient_key")),
            "label_set": default_label_set(metadata),
        }

    def _header_of(self, stored: str) -> Header:
        try:
            path = self._path(stored)
        except MedsearchError:  # gone, outside the roots, DICOMweb: it keeps the store's place in the order
            return Header()
        return read_header(path) if _is_dicom_path(path) else Header()

    def _path(self, stored: str) -> Path:
        from medsearch.indexer.dicomweb.source import is_source

        if is_source(stored):
            raise NotFound("A DICOMweb item is shown by its thumbnail; open it in the viewer of its source.")
        return self.guard(stored)

    def _decode(self, item: tuple[Path, Any, int, Window]) -> ViewFrame:
        result = self.workers.run(_decode_task, item)
        if isinstance(result, str):
            raise UnreadableFile(result)
        frame: ViewFrame = result
        return frame

    def close(self) -> None:
        self.workers.close()


def _decode_task(item: tuple[Path, Any, int, Window]) -> ViewFrame | str:
    from medsearch.errors import MedsearchError

    path, options, frame_number, start = item
    try:
        return read_view_frame(path, options, frame_number, start)
    except MedsearchError as error:
        return str(error)


def _is_dicom_path(path: Path) -> bool:
    from medsearch.indexer.readers import read_head

    head = read_head(path)
    return head[128:132] == b"DICM" or path.suffix.lower() in (".dcm", ".dicom")


def start_window(header: Header) -> Window:
    """The window a DICOM image opens at: its own; else a CT's ``CT_START_PRESET``; else None (the range of
    its values)."""
    if header.window is None and header.modality == "CT":
        return WINDOW_PRESETS[CT_START_PRESET]
    return header.window


def presets_for(metadata: dict[str, Any]) -> dict[str, list[float]]:
    """The named windows offered for an image: the indexer's CT presets (Hounsfield units) for CT, none
    for others (their values are not in HU)."""
    if str(metadata.get("modality") or "").upper() != "CT":
        return {}
    return {name: [center, width] for name, (center, width) in WINDOW_PRESETS.items()}


def default_label_set(metadata: dict[str, Any]) -> str | None:
    """The built-in label set the page offers first for an image of this modality / body part, or None."""
    modality = str(metadata.get("modality") or "").upper()
    body_part = str(metadata.get("body_part") or "").upper()
    for name, modalities in LABEL_SETS.items():
        if modality in modalities:
            return name
    if body_part in ("CHEST", "THORAX") and modality in ("", "CR", "DX", "RG", "DR"):
        return "cxr-findings"
    return None
