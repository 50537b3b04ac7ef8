"""Decoding for the server under the caps indexing has (``medsearch.indexer.workers``): each upload or thumbnail is
decoded in a worker process with a capped address space and a time limit, at most ``concurrent`` at a
time (more wait their turn), and pictures over ``max_pixels`` (uploads: ``max_upload_pixels``, set by
``medsearch serve --max-upload-pixels``) are refused from their header before any pixel is decoded. A
decompression bomb costs a worker, never the server's memory."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from medsearch.errors import ImageTooLarge, UnreadableFile
from medsearch.indexer.frames import ReadOptions
from medsearch.indexer.preprocess import Preprocessor
from medsearch.indexer.workers import Limits, ordered_map
from medsearch.server.limits import SERVER_MAX_PIXELS
from medsearch.server.security import PayloadTooLarge


@dataclass(frozen=True)
class Failed:
    reason: str


@dataclass(frozen=True)
class TooLarge:
    """An upload over the pixel limit, as the worker reports it (the exception's type stays in the worker)."""

    reason: str


class Decoder:
    """``upload_pixels(data, filename, preprocessor)``, ``thumbnail(path, size)`` and ``bytes_thumbnail(data,
    filename, size)`` in capped workers: stored pictures up to ``max_pixels``, uploads up to
    ``max_upload_pixels``. Raise UnreadableFile (bad file, too many pixels, over the memory or time cap);
    an upload over its limit raises PayloadTooLarge (413) naming the setting."""

    def __init__(self, limits: Limits | None = None, concurrent: int = 2, max_pixels: int = SERVER_MAX_PIXELS,
                 max_upload_pixels: int = SERVER_MAX_PIXELS) -> None:
        self.limits = limits or Limits()
        self.slots = threading.BoundedSemaphore(concurrent)
        self.options = ReadOptions(max_pixels=max_pixels)
        self.upload_options = ReadOptions(max_pixels=max_upload_pixels)

    def upload_pixels(self, data: bytes, filename: str, preprocessor: Preprocessor) -> np.ndarray:
        """(3, S, S) float32: the first frame of an uploaded image, preprocessed for the model. Raises
        PayloadTooLarge over ``max_upload_pixels``, UnreadableFile."""
        result = self._run(_upload_task, (data, filename, self.upload_options, preprocessor))
        if isinstance(result, TooLarge):
            raise PayloadTooLarge(f"{result.reason}: this server takes uploads of at most "
                                  f"{self.upload_options.max_pixels} pixels (medsearch serve --max-upload-pixels)")
        pixels: np.ndarray = result
        return pixels

    def thumbnail(self, path: Path, size: int) -> bytes:
        """PNG bytes of the file's thumbnail (``thumbnails.render_png``: burned-in text masked)."""
        result: bytes = self._run(_thumbnail_task, (path, size, self.options))
        return result

    def bytes_thumbnail(self, data: bytes, filename: str, size: int) -> bytes:
        """PNG bytes of the thumbnail of an image given as bytes (a DICOMweb instance)."""
        result: bytes = self._run(_bytes_thumbnail_task, (data, filename, size, self.options))
        return result

    def model_input_png(self, path: Path, options: ReadOptions, preprocessor: Preprocessor,
                        frame_number: int) -> bytes:
        """PNG bytes of the model input of a file read with ``options`` (``medsearch.indexer.preview.shown_png``:
        burned-in text masked unless ``options.keep_identity``), the pixel cap lowered to the server's."""
        capped = replace(options, max_pixels=min(options.max_pixels, self.options.max_pixels))
        result: bytes = self._run(_model_input_task, (path, capped, preprocessor, frame_number))
        return result

    def _run(self, task: Callable[[Any], Any], item: tuple[Any, ...]) -> Any:
        with self.slots:
            [(_item, result)] = list(ordered_map(task, [item], 1, _failed, limits=self.limits))
        if isinstance(result, Failed):
            raise UnreadableFile(result.reason)
        return result


def _failed(_item: Any, reason: str) -> Failed:
    return Failed(reason)


def _upload_task(item: tuple[bytes, str, ReadOptions, Preprocessor]) -> np.ndarray | TooLarge:
    from medsearch.indexer.memory_read import read_bytes

    data, filename, options, preprocessor = item
    try:
        frames = read_bytes(data, options, filename)
    except ImageTooLarge as error:
        return TooLarge(str(error))
    return preprocessor(frames[0].pixels)


def _thumbnail_task(item: tuple[Path, int, ReadOptions]) -> bytes:
    from medsearch.server.thumbnails import render_png

    path, size, options = item
    return render_png(path, size, options)


def _bytes_thumbnail_task(item: tuple[bytes, str, int, ReadOptions]) -> bytes:
    from medsearch.indexer.memory_read import read_bytes
    from medsearch.indexer.thumbnail import shown_png

    data, filename, size, options = item
    return shown_png(read_bytes(data, options, filename)[0], size, options)


def _model_input_task(item: tuple[Path, ReadOptions, Preprocessor, int]) -> bytes:
    from medsearch.indexer.preview import shown_png

    path, options, preprocessor, frame_number = item
    return shown_png(path, options, preprocessor, frame_number)
