"""Thumbnails rendered on demand (those not made at index time, or of another size): the file read by the
medical pixel pipeline (modality LUT, window, MONOCHROME1 inverted, scaled to [0, 1]) and written as a
PNG (burned-in text masked or the picture withheld, ``medsearch.indexer.censor``: the server does not know
whether the store keeps identity, so it always masks), kept in a small in-memory LRU cache keyed by path,
mtime and size (DICOMweb images: see ``medsearch.server.wado``). Nothing is written to disk."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from medsearch.indexer import thumbnail
from medsearch.indexer.frames import ReadOptions
from medsearch.indexer.readers import read_file

MIN_SIZE = 16
MAX_SIZE = 1024


def render_png(path: Path, size: int, options: ReadOptions | None = None) -> bytes:
    """PNG bytes of the file's representative frame, fitted inside ``size`` x ``size`` pixels (aspect
    kept), burned-in text masked or the picture withheld (``thumbnail.shown_png``). Raises UnreadableFile."""
    return thumbnail.shown_png(read_file(path, options or ReadOptions())[0], size, options or ReadOptions())


class ThumbnailCache:
    """``get(path, size)`` -> PNG bytes made by ``render`` (the server's capped decoder); the ``capacity``
    most recently used thumbnails are kept."""

    def __init__(self, capacity: int = 512, render: Callable[[Path, int], bytes] = render_png) -> None:
        self.capacity = capacity
        self.render = render
        self.renders = 0
        self._items: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path, size: int) -> bytes:
        return self.cached((str(path), path.stat().st_mtime_ns, size), lambda: self.render(path, size))

    def cached(self, key: tuple[str, int, int], render: Callable[[], bytes]) -> bytes:
        """The PNG cached under ``key`` (path, version, size), made by ``render`` when missing."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        png = render()
        with self._lock:
            self.renders += 1
            self._items[key] = png
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return png
