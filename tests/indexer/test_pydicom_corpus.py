"""Every file that ships in pydicom's wheel goes through the reader chain: it reads into display-ready
frames with sane metadata, or it is rejected with a reason. Nothing else: no other exception, no crash.
Of the files that hold an image, at least 9 in 10 must read."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
from medsearch.errors import UnreadableFile
from medsearch.indexer.frames import Frame, ReadOptions
from medsearch.indexer.readers import read_file
from medsearch.storage.models import METADATA_COLUMNS
from pydicom.data import get_testdata_files

PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def corpus() -> list[Path]:
    """The test files on disk (the wheel's own; nothing is downloaded)."""
    return sorted({Path(name) for name in get_testdata_files() if Path(name).is_file()})


def holds_image(path: Path) -> bool:
    """Judged by pydicom alone: a dataset with Rows, Columns and a pixel data element."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, force=True)
        return "Rows" in ds and "Columns" in ds and any(keyword in ds for keyword in PIXEL_KEYWORDS)
    except Exception:
        return False


def frame_problems(frames: list[Frame]) -> list[str]:
    """What is wrong with the frames of one file (an empty list when they are sane)."""
    problems = [] if frames else ["no frames"]
    for frame in frames:
        pixels, meta = frame.pixels, frame.metadata
        if pixels.dtype != np.float32 or not (pixels.ndim == 2 or pixels.shape[2:] == (3,)):
            problems.append(f"pixels {pixels.dtype} {pixels.shape}")
        elif not pixels.flags.c_contiguous:
            problems.append("pixels not C-contiguous")
        elif not np.isfinite(pixels).all() or pixels.min() < 0.0 or pixels.max() > 1.0:
            problems.append("pixels not finite or outside [0, 1]")
        known = {*METADATA_COLUMNS, "accession_key"}  # the keyed hash that matches reports (dicom_meta)
        if not set(meta) <= known:
            problems.append(f"unknown keys {sorted(set(meta) - known)}")
        if (meta.get("height"), meta.get("width")) != pixels.shape[:2]:
            problems.append(f"size {meta.get('width')} x {meta.get('height')} vs pixels {pixels.shape}")
        if meta.get("frame_number") != frame.frame_number or meta.get("file_format") not in ("dicom", "png"):
            problems.append(f"frame_number/file_format {frame.frame_number} {meta}")
    numbers = [frame.frame_number for frame in frames]
    if len(frames) > 1 and numbers != list(range(1, len(frames) + 1)):
        problems.append(f"frame numbers {numbers}")
    return problems


def outcome(path: Path) -> tuple[str, str]:
    """``("read", summary)``, ``("rejected", reason)`` or ``("PROBLEM", what)``."""
    try:
        frames = read_file(path, ReadOptions(frames="all"))
    except UnreadableFile as exc:
        return ("rejected", exc.reason) if exc.reason.strip() else ("PROBLEM", "empty reason")
    except BaseException as exc:  # the contract allows UnreadableFile only
        return "PROBLEM", f"{type(exc).__name__}: {exc}"
    problems = frame_problems(frames)
    if problems:
        return "PROBLEM", "; ".join(problems)
    return (
        "read",
        f"{len(frames)} frame(s) {frames[0].pixels.shape} {frames[0].metadata.get('transfer_syntax')}",
    )


def test_every_pydicom_test_file_reads_or_says_why() -> None:
    files = corpus()
    assert len(files) > 100, "pydicom's test files are missing"
    root = Path(pydicom.data.__file__).parent / "test_files"
    rows = [(path, holds_image(path), *outcome(path)) for path in files]
    images = [row for row in rows if row[1]]
    read = [row for row in images if row[2] == "read"]
    table = "\n".join(
        f"{kind:8s} {'image' if image else '     '} {_name(path, root)}  {detail}"
        for path, image, kind, detail in rows
    )
    summary = (
        f"\n{len(rows)} files, {len(images)} hold an image; read {sum(r[2] == 'read' for r in rows)}, "
        f"rejected {sum(r[2] == 'rejected' for r in rows)}; images read {len(read)}/{len(images)}\n"
    )
    assert not [row for row in rows if row[2] == "PROBLEM"], summary + table
    assert len(read) * 10 >= len(images) * 9, summary + table


def _name(path: Path, root: Path) -> str:
    return str(path.relative_to(root) if path.is_relative_to(root) else path)
