"""The per-file work done in worker processes: hash, read, preprocess. Returns plain picklable data."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from medsearch.errors import UnreadableFile
from medsearch.indexer.censor import shown
from medsearch.indexer.dicom_sr import ReportFound
from medsearch.indexer.discover import FileEntry
from medsearch.indexer.frames import Frame, ReadOptions, read_key
from medsearch.indexer.memory_read import read_bytes
from medsearch.indexer.plan import file_hash
from medsearch.indexer.preprocess import PREPROCESSING_VERSION, Preprocessor
from medsearch.indexer.readers import read_file
from medsearch.indexer.thumbnail import render_png
from medsearch.indexer.windows import parse_window
from medsearch.storage.report_types import RawReport


@dataclass
class Loaded:
    """A file ready to embed: (frame_number, (3, S, S) float32 pixels, metadata) per frame, and a PNG
    thumbnail per frame (burned-in text masked or withheld: ``medsearch.indexer.censor``); or ``error``."""

    entry: FileEntry
    content_hash: str = ""
    frames: list[tuple[int, np.ndarray, dict[str, Any]]] = field(default_factory=list)
    thumbnails: list[bytes] = field(default_factory=list)
    error: str | None = None
    damaged: list[str] = field(default_factory=list)  # frames that could not be decoded while others were
    report: RawReport | None = None  # a structured report instead of frames (``medsearch.indexer.dicom_sr``)
    read_seconds: float = 0.0
    preprocess_seconds: float = 0.0


def load_file(entry: FileEntry, options: ReadOptions, preprocessor: Preprocessor, content_hash: str | None) -> Loaded:
    """Read and preprocess one file. Never raises for a bad file: the reason goes in ``error``."""
    loaded = Loaded(entry)
    started = time.perf_counter()
    try:
        loaded.content_hash = content_hash or file_hash(entry.path)
        frames = read_file(Path(entry.path), options)
    except ReportFound as found:
        loaded.report = found.report
        return loaded
    except UnreadableFile as exc:
        loaded.error = exc.reason
        return loaded
    except OSError as exc:
        loaded.error = f"cannot read file: {exc.strerror or exc}"
        return loaded
    except MemoryError:
        loaded.error = "not enough memory to decode this file"
        return loaded
    return _preprocessed(loaded, frames, options, preprocessor, started)


def load_bytes(entry: FileEntry, data: bytes, options: ReadOptions, preprocessor: Preprocessor) -> Loaded:
    """Read and preprocess an image held in memory (an instance fetched from a server), as ``load_file``
    does for a file; ``content_hash`` is the SHA-256 of ``data``. Never raises for bad bytes."""
    loaded = Loaded(entry, content_hash=hashlib.sha256(data).hexdigest())
    started = time.perf_counter()
    try:
        frames = read_bytes(data, options, "instance.dcm")
    except ReportFound as found:
        loaded.report = found.report
        return loaded
    except UnreadableFile as exc:
        loaded.error = exc.reason
        return loaded
    except MemoryError:
        loaded.error = "not enough memory to decode this file"
        return loaded
    return _preprocessed(loaded, frames, options, preprocessor, started)


def _preprocessed(loaded: Loaded, frames: list[Frame], options: ReadOptions, preprocessor: Preprocessor,
                 started: float) -> Loaded:
    middle = time.perf_counter()
    loaded.read_seconds = middle - started
    key = read_key(options, parse_window(options.window))
    for frame in frames:
        made = {"preprocessing_version": PREPROCESSING_VERSION}
        if frame.metadata.get("voi") is not None:  # greyscale DICOM: the VOI options decide its pixels
            made["read_options"] = key
        picture, text_regions = shown(frame.pixels, bool(frame.metadata.get("burned_in_annotation")),
                                      options.keep_identity)
        made["text_regions"] = text_regions
        loaded.frames.append((frame.frame_number, preprocessor(frame.pixels), {**frame.metadata, **made}))
        loaded.thumbnails.append(render_png(picture))
    loaded.damaged = list(getattr(frames, "damaged", []))
    loaded.preprocess_seconds = time.perf_counter() - middle
    return loaded
