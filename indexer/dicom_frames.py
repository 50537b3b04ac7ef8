"""Decoding a DICOM file's frames into display frames (``medsearch.indexer.windows.render``), one frame at a
time from pydicom's lazy ``iter_pixels``. ``source``: ``medsearch.indexer.dicom``'s parsed header and where its
pixels are decoded from. A frame that cannot be decoded in a multi-frame file is left out and named, not the
whole file refused (issue 29)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, cast

import numpy as np
from medsearch.errors import UnreadableFile
from medsearch.indexer.frames import Frame, FrameList, ReadOptions
from medsearch.indexer.isolation import DecodeGuard
from medsearch.indexer.windows import render

MIDDLE_FALLBACKS = 4
"""A multi-frame file whose middle frame cannot be decoded is represented by the nearest of this many others."""


def decode_frames(source: Any, count: int, indices: list[int], window: tuple[float, float] | None,
                  options: ReadOptions, metadata: dict[str, Any]) -> FrameList:
    """Decode and render ``indices``. In a multi-frame file (unless one frame was asked for) a frame that
    cannot be decoded is noted in ``damaged`` and the others are kept; with ``frames="middle"`` the nearest
    good frame stands in for a damaged middle one. Raises UnreadableFile when no frame is left."""
    tolerant = count > 1 and options.frame is None
    wanted = len(indices)
    if tolerant and options.frames == "middle":
        indices = sorted(range(count), key=lambda index: (abs(index - indices[0]), index))[:MIDDLE_FALLBACKS + 1]
    frames = FrameList()
    while indices and len(frames) < wanted:
        done, problem = _decode_run(source, count > 1, indices, window, options, metadata, frames, wanted)
        if problem is None:
            break
        where = f"frame {indices[done] + 1}: " if count > 1 else ""
        if not tolerant:
            raise UnreadableFile(where + problem)
        frames.damaged.append(where + problem)
        indices = indices[done + 1:]
    if not frames:  # the first frame's reason (the middle one's, for frames="middle")
        others = len(frames.damaged) - 1
        raise UnreadableFile(frames.damaged[0] + (f" (nor could {others} other frame(s))" if others else ""))
    return frames


def _decode_run(source: Any, numbered: bool, indices: list[int], window: tuple[float, float] | None,
                options: ReadOptions, metadata: dict[str, Any], frames: FrameList,
                wanted: int) -> tuple[int, str | None]:
    """Decode ``indices`` in order into ``frames`` until ``wanted`` frames are there; returns (position of
    the frame that failed, its reason) or (positions done, None)."""
    decoded = _decode(source, indices)
    try:
        for position, index in enumerate(indices):
            if len(frames) >= wanted:
                return position, None
            try:
                with DecodeGuard("cannot decode pixel data"):
                    raw = next(decoded, None)
                if raw is None:
                    raise UnreadableFile(f"pixel data ends before frame {index + 1}")
                with DecodeGuard("cannot convert pixels for display"):
                    image, voi = render(raw, source.ds, index, window, options.voi)
            except UnreadableFile as exc:
                return position, exc.reason
            number = index + 1 if numbered else 0
            frames.append(Frame(pixels=image, frame_number=number,
                                metadata={**metadata, "frame_number": number, "voi": voi}))
    finally:
        decoded.close()  # while the file is still open: a half-read generator closed later raises noise
    return len(indices), None


def _decode(source: Any, indices: list[int]) -> Generator[np.ndarray, None, None]:
    """A lazy iterator over the frames in ``indices`` only: (rows, columns) or (rows, columns, samples)
    arrays, YBR already converted to RGB. Decoding happens in ``next``."""
    from pydicom.dataset import Dataset
    from pydicom.pixels import iter_pixels

    options: dict[str, Any] = {}
    if not isinstance(source.decode_from, Dataset):  # a file: the syntax may be missing from it
        options["transfer_syntax_uid"] = source.transfer_syntax
    return cast(Generator[np.ndarray, None, None], iter_pixels(source.decode_from, indices=indices, **options))
