"""Burned-in text detection: Tesseract (through ``tesserocr``, with Debian's ``tesseract-ocr`` English model)
run on a picture of at most ``DETECT_SIZE`` pixels on its longer side.

``find_text`` returns every word Tesseract reads with a confidence of at least ``MASK_CONFIDENCE`` (its box
as fractions of the picture's size, so that it can be masked in a picture of another size; see
``medsearch.indexer.censor``). A picture *carries text* (``text_words``) when at least one word holds
``MIN_CHARACTERS`` letters or digits read with a confidence of at least ``MIN_CONFIDENCE``: noise and
anatomy read as short, unsure "words", burned-in names, dates and IDs as longer, surer ones. These
thresholds were chosen on ``benchmarks/burned_in_text.py``'s pictures (the README gives its figures).

Tesseract engines are not thread-safe and cost about a second each to create (measured on these 2-core
machines), so a small pool is kept: at most ``POOL_SIZE`` engines, each used by one thread at a time, made on
first need and reused by whichever thread comes next (a server's forty worker threads would otherwise each
make their own)."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DETECT_SIZE = 512
"""Pixels on the longer side of the picture the detector reads (smaller pictures are enlarged to it)."""
MIN_CONFIDENCE = 50.0
MIN_CHARACTERS = 3
MASK_CONFIDENCE = 30.0
TESSDATA_FOLDERS = ("/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata",
                    "/usr/share/tessdata", "/usr/local/share/tessdata")

POOL_SIZE = max(1, min(4, os.cpu_count() or 1))
"""Engines kept at most; a thread that finds none free waits for one."""


@dataclass(frozen=True)
class TextBox:
    """A word found in a picture: its box as fractions of the picture's width and height, its text."""

    left: float
    top: float
    right: float
    bottom: float
    text: str
    confidence: float = 100.0


def tessdata_folder() -> str | None:
    """Where Tesseract's ``eng.traineddata`` is: ``TESSDATA_PREFIX``, else Debian's folders; None if nowhere."""
    candidates = [os.environ.get("TESSDATA_PREFIX") or "", *TESSDATA_FOLDERS]
    for folder in candidates:
        if folder and (Path(folder) / "eng.traineddata").is_file():
            return folder
    return None


def available() -> bool:
    """Whether the detector can run here (``tesserocr`` installed and an English model found)."""
    with _engine() as engine:
        return engine is not None


def text_words(words: list[TextBox] | None) -> list[TextBox]:
    """The words of ``find_text``'s that show the picture carries text (see the module doc); [] for None."""
    return [word for word in words or [] if word.confidence >= MIN_CONFIDENCE
            and sum(ch.isalnum() for ch in word.text) >= MIN_CHARACTERS]


def find_text(pixels: np.ndarray, size: int = DETECT_SIZE) -> list[TextBox] | None:
    """The words Tesseract reads in ``pixels`` ((H, W) or (H, W, 3) float32 in [0, 1]) with a confidence of
    at least ``MASK_CONFIDENCE``, read on a copy ``size`` pixels on its longer side; None when the detector
    is not available. Never raises for the picture's content."""
    from PIL import Image

    grey = pixels.mean(axis=2) if pixels.ndim == 3 else pixels
    picture = Image.fromarray(np.round(np.clip(grey, 0.0, 1.0) * 255.0).astype(np.uint8))
    scale = size / max(picture.size)
    shape = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    picture = picture.resize(shape, Image.Resampling.LANCZOS)
    with _engine() as engine:
        if engine is None:
            return None
        engine.SetImage(picture)
        engine.Recognize()
        return list(_words(engine, picture.width, picture.height))


def _words(engine: Any, width: int, height: int) -> list[TextBox]:
    import tesserocr

    found: list[TextBox] = []
    iterator = engine.GetIterator()
    level = tesserocr.RIL.WORD
    if iterator is None:
        return found
    for word in tesserocr.iterate_level(iterator, level):
        try:  # an empty word raises RuntimeError ("No text returned")
            text, box = (word.GetUTF8Text(level) or "").strip(), word.BoundingBox(level)
            confidence = word.Confidence(level)
        except RuntimeError:
            continue
        if box is None or not any(ch.isalnum() for ch in text) or confidence < MASK_CONFIDENCE:
            continue
        left, top, right, bottom = box
        found.append(TextBox(left / width, top / height, right / width, bottom / height, text, confidence))
    return found


LEPTONICA_SEVERITY_NONE = 6
"""Leptonica's ``L_SEVERITY_NONE``: no message printed."""


class _Pool:
    """At most ``POOL_SIZE`` engines, lent one thread at a time."""

    def __init__(self) -> None:
        self.free: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.made = 0
        self.lock = threading.Lock()
        self.missing = False

    def take(self) -> Any:
        try:
            return self.free.get_nowait()
        except queue.Empty:
            pass
        with self.lock:
            make = not self.missing and self.made < POOL_SIZE
            self.made += make
        if self.missing:
            return None
        if not make:
            return self.free.get()
        engine = _new_engine()
        if engine is None:
            self.missing = True
        return engine


_pool = _Pool()


@contextmanager
def _engine() -> Iterator[Any]:
    """A Tesseract engine of the pool for the block, or None when tesserocr or the English model is missing."""
    engine = _pool.take()
    try:
        yield engine
    finally:
        if engine is not None:
            _pool.free.put(engine)


def _new_engine() -> Any:
    try:
        import tesserocr
    except ImportError:
        return None
    folder = tessdata_folder()
    if folder is None:
        return None
    _quiet_leptonica()
    return tesserocr.PyTessBaseAPI(path=folder, lang="eng", psm=tesserocr.PSM.SPARSE_TEXT)


def _quiet_leptonica() -> None:
    """Stop Leptonica (Tesseract's image library) printing its own errors on stderr ("Error in
    boxClipToRectangle: box outside rectangle" for a word box at the picture's edge): they are harmless
    and would reach a user's terminal, and ``--json`` readers that merge the two streams. Best effort."""
    import ctypes

    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "libleptonica" in line or "liblept." in line}
        for path in paths:
            ctypes.CDLL(path).setMsgSeverity(LEPTONICA_SEVERITY_NONE)
    except (OSError, AttributeError):
        pass
