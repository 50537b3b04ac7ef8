"""Mutation fuzzing of the DICOM reader: whatever the bytes, ``read_file`` returns display frames
(float32, finite, in [0, 1], Rows x Columns [x 3]) or raises ``UnreadableFile`` with a reason, within a
time and a memory bound.

Seeds are pydicom's own small test files, one per transfer syntax family. A case is a seed, at most one
structured edit written with pydicom (absurd image attributes, a wrong Transfer Syntax UID, no or cut
pixel data) and up to three byte mutations (flips, 32-bit overwrites, a bad pixel data length,
insertions, deletions, truncation). CI runs ``MEDSEARCH_FUZZ_EXAMPLES`` cases (default 200) with a
fixed seed; set it higher for a local campaign. A failing case is written to
``<pytest basetemp>/fuzz-failures/`` and named in the failure. Interesting cases found so far live in
``tests/data/fuzz/dicom/`` (see ``expected.json`` there) and are replayed on every run."""

from __future__ import annotations

import faulthandler
import hashlib
import io
import json
import os
import resource
import signal
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from medsearch.errors import UnreadableFile
from medsearch.indexer.frames import Frame, ReadOptions
from medsearch.indexer.readers import read_file
from medsearch.indexer.workers import CRASHED, Limits
from pydicom import dcmread
from pydicom.data import get_testdata_files
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from tests.indexer.worker_read import read_in_worker

CORPUS = Path(__file__).parents[1] / "data" / "fuzz" / "dicom"
SEEDS = [
    "CT_small.dcm",  # Explicit VR Little Endian, 16-bit, rescale + window
    "MR_small_bigendian.dcm",  # Explicit VR Big Endian
    "rtdose.dcm",  # Implicit VR, 32-bit, 15 frames
    "image_dfl.dcm",  # Deflated Explicit VR
    "SC_ybr_full_422_uncompressed.dcm",  # native YBR_FULL_422
    "MR_small_RLE.dcm",  # RLE Lossless
    "SC_rgb_rle_2frame.dcm",  # RLE, RGB, two frames
    "SC_rgb_jpeg_dcmtk.dcm",  # JPEG Baseline, YBR_FULL
    "JPGExtended.dcm",  # JPEG Extended 12-bit
    "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS Lossless
    "JPEG2000.dcm",  # JPEG 2000
    "GDCMJ2K_TextGBR.dcm",  # JPEG 2000 Lossless in a JP2 wrapper, YBR_RCT
    "examples_palette.dcm",  # PALETTE COLOR (cropped to 64 x 64 below)
]
EXAMPLES = int(os.environ.get("MEDSEARCH_FUZZ_EXAMPLES", "200"))
CASE_TIMEOUT_S = 10
HANG_EXIT_S = 60  # a native decoder that ignores SIGALRM: dump tracebacks and exit instead of hanging CI
MAX_RSS_GROWTH_KB = 1024 * 1024  # 1 GiB of new peak resident memory in one case is unbounded
CORPUS_TIMEOUT_S = 30
CORPUS_MEMORY_BYTES = 2 << 30
ISOLATION_REASONS = ("decoding took longer", "decoding needed more than", CRASHED)

_US = lambda v: ("US", v)  # noqa: E731 - short table entries below
_IS = lambda v: ("IS", v)  # noqa: E731
_DS = lambda v: ("DS", v)  # noqa: E731
_CS = lambda v: ("CS", v)  # noqa: E731
EDIT_VALUES: dict[str, list[tuple[str, Any]]] = {
    "Rows": [_US(v) for v in (0, 1, 3, 255, 32768, 65535)],
    "Columns": [_US(v) for v in (0, 1, 3, 255, 32768, 65535)],
    "NumberOfFrames": [_IS(v) for v in ("0", "-1", "2", "3", "10000", "abc", "99999999999", "1.5", "")],
    "BitsAllocated": [_US(v) for v in (0, 1, 7, 8, 12, 16, 24, 32, 64, 65535)],
    "BitsStored": [_US(v) for v in (0, 1, 7, 17, 33, 64, 65535)],
    "HighBit": [_US(v) for v in (0, 6, 15, 31, 64, 65535)],
    "SamplesPerPixel": [_US(v) for v in (0, 1, 2, 3, 4, 65535)],
    "PixelRepresentation": [_US(v) for v in (0, 1, 2, 65535)],
    "PlanarConfiguration": [_US(v) for v in (0, 1, 2)],
    "PhotometricInterpretation": [
        _CS(v) for v in ("MONOCHROME1", "MONOCHROME2", "RGB", "PALETTE COLOR", "YBR_FULL_422", "YBR_ICT", "HSV", "")
    ],
    "RescaleSlope": [_DS(v) for v in ("0", "-1", "1e308", "-1e308", "nan", "inf", "x")],
    "RescaleIntercept": [_DS(v) for v in ("1e308", "-1e308", "nan", "x")],
    "WindowCenter": [_DS(v) for v in ("0", "-1e308", "nan", "40\\400\\x")],
    "WindowWidth": [_DS(v) for v in ("0", "-1", "1e-300", "inf", "nan", "x")],
    "RedPaletteColorLookupTableDescriptor": [_US(v) for v in ((0, 0, 16), (65535, 0, 8), (1, 65535, 16), (4, 0, 3))],
}
TRANSFER_SYNTAXES = [
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.80",
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.100",
    "1.2.840.10008.1.2.5",
    "1.2.3.4",
    "",
]
INTERESTING_U32 = [0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF, 0x10000]


# --- seeds and mutations ---------------------------------------------------------------------------


def _seed_dataset(name: str) -> Dataset:
    path = next(Path(p) for p in get_testdata_files() if Path(p).name == name)
    ds = dcmread(path)
    if name == "examples_palette.dcm":  # 800 x 350: crop to keep cases small and fast
        ds.PixelData = ds.pixel_array[:64, :64].tobytes()
        ds.Rows = ds.Columns = 64
    return ds


def _to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


SEED_BYTES = {name: _to_bytes(_seed_dataset(name)) for name in SEEDS}


def _set_raw(ds: Dataset, keyword: str, vr: str, value: Any) -> None:
    """Store ``value`` as raw bytes, so that values pydicom would refuse to convert are written."""
    from pydicom.datadict import tag_for_keyword

    implicit, little = ds.original_encoding
    endian = "<" if little is not False else ">"
    if vr == "US":
        values = value if isinstance(value, tuple) else (value,)
        raw = struct.pack(f"{endian}{len(values)}H", *values)
    else:
        raw = value.encode("ascii")
        raw += b" " * (len(raw) % 2)
    tag = Tag(tag_for_keyword(keyword))
    ds[tag] = RawDataElement(tag, vr, len(raw), raw, 0, bool(implicit), little is not False)


def _set_transfer_syntax(data: bytes, uid: str) -> bytes:
    """Rewrite the file meta's Transfer Syntax UID in place (group length kept consistent)."""
    start = data.find(b"\x02\x00\x10\x00UI", 132)
    if start < 0:
        return data
    old_length = struct.unpack_from("<H", data, start + 6)[0]
    value = uid.encode() + b"\x00" * (len(uid) % 2)
    out = bytearray(data[: start + 6] + struct.pack("<H", len(value)) + value + data[start + 8 + old_length :])
    if out[132:140] == b"\x02\x00\x00\x00UL\x04\x00":  # File Meta Information Group Length
        group_length = struct.unpack_from("<L", out, 140)[0] + len(value) - old_length
        struct.pack_into("<L", out, 140, group_length)
    return bytes(out)


def _apply_edit(seed: str, edit: tuple[str, Any]) -> bytes:
    kind, value = edit
    ds = dcmread(io.BytesIO(SEED_BYTES[seed]))
    if kind == "transfer_syntax":
        return _set_transfer_syntax(SEED_BYTES[seed], value)
    if kind == "remove":
        del ds[value]
    elif kind == "cut_pixels":
        encapsulated = ds.PixelData.startswith(b"\xfe\xff\x00\xe0")  # keep the first item's tag
        ds.PixelData = ds.PixelData[: max(8 * encapsulated, int(len(ds.PixelData) * value) & ~1)]
    else:
        _set_raw(ds, kind, *value)
    return _to_bytes(ds)


def _pixel_data_offset(data: bytes) -> int:
    """Where the last Pixel Data element header starts (either byte order), or -1."""
    return max(data.rfind(b"\xe0\x7f\x10\x00"), data.rfind(b"\x7f\xe0\x00\x10"))


def _apply_op(data: bytes, op: tuple[str, int, int, int]) -> bytes:
    kind, position, value, count = op
    pixels = _pixel_data_offset(data)
    if kind == "pixel_length" and pixels >= 0:
        at = pixels + (8 if data[pixels + 4 : pixels + 6] in (b"OB", b"OW") else 4)
        return data[:at] + struct.pack("<L", value) + data[at + 4 :]
    if not data:
        return data
    if kind == "flip_header" and pixels > 0:
        position %= pixels
    elif kind == "flip_pixels" and 0 <= pixels < len(data) - 1:
        position = pixels + position % (len(data) - pixels)
    position %= len(data)
    if kind.startswith("flip"):
        return data[:position] + bytes([data[position] ^ (value & 0xFF or 1)]) + data[position + 1 :]
    if kind == "u32":
        return data[:position] + struct.pack("<L", value) + data[position + 4 :]
    if kind == "insert":
        return data[:position] + bytes([value & 0xFF]) * count + data[position:]
    if kind == "delete":
        return data[:position] + data[position + count :]
    return data[:position]  # truncate


edits = st.one_of(
    st.sampled_from([(name, value) for name, values in EDIT_VALUES.items() for value in values]),
    st.tuples(st.just("transfer_syntax"), st.sampled_from(TRANSFER_SYNTAXES)),
    st.tuples(st.just("remove"), st.sampled_from(["PixelData", "Rows", "PhotometricInterpretation", "BitsAllocated"])),
    st.tuples(st.just("cut_pixels"), st.sampled_from([0.0, 0.1, 0.5, 0.99])),
)
byte_ops = st.tuples(
    st.sampled_from(["flip_header", "flip_pixels", "flip", "u32", "pixel_length", "insert", "delete", "truncate"]),
    st.integers(0, 2**31),
    st.one_of(st.sampled_from(INTERESTING_U32), st.integers(0, 2**32 - 1)),
    st.integers(1, 64),
)


@st.composite
def mutated_files(draw: st.DrawFn, seed: str) -> bytes:
    """A seed with at most one structured edit and 0-3 byte mutations; never the seed unchanged."""
    edit = draw(st.none() | edits)
    ops = draw(st.lists(byte_ops, min_size=0 if edit else 1, max_size=3))
    data = _apply_edit(seed, edit) if edit else SEED_BYTES[seed]
    for op in ops:
        data = _apply_op(data, op)
    return data


# --- the contract, bounded -------------------------------------------------------------------------


class CaseTimeout(BaseException):
    """Raised by SIGALRM in a case that runs too long (a ``BaseException``, as a hang may be anywhere)."""


@contextmanager
def _bounded(timeout_s: int) -> Iterator[dict[str, bool]]:
    """Run a block under SIGALRM (Python-level hangs) and a faulthandler exit (native ones). Yields a
    dict whose ``"timed_out"`` says whether the alarm fired, even if the reader turned it into a reason."""
    state = {"timed_out": False}

    def on_alarm(signum: int, frame: object) -> None:
        state["timed_out"] = True
        raise CaseTimeout(f"case ran longer than {timeout_s} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(timeout_s)
    faulthandler.dump_traceback_later(HANG_EXIT_S, exit=True)
    try:
        yield state
    finally:
        signal.alarm(0)
        faulthandler.cancel_dump_traceback_later()
        signal.signal(signal.SIGALRM, previous)


def _max_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def read_bounded(path: Path, options: ReadOptions | None = None) -> list[Frame] | UnreadableFile:
    """``read_file`` under the time and memory bounds: its frames, or the ``UnreadableFile`` it
    raised. Any other exception propagates (a contract violation)."""
    before = _max_rss_kb()
    outcome: list[Frame] | UnreadableFile
    with _bounded(CASE_TIMEOUT_S) as state:
        try:
            outcome = read_file(path, options or ReadOptions())
        except UnreadableFile as exc:
            outcome = exc
    assert not state["timed_out"], f"read took longer than {CASE_TIMEOUT_S} s"
    growth = _max_rss_kb() - before
    assert growth < MAX_RSS_GROWTH_KB, f"peak resident memory grew by {growth // 1024} MB"
    if isinstance(outcome, UnreadableFile):
        assert outcome.reason.strip(), "UnreadableFile without a reason"
        assert "out of memory" not in outcome.reason, outcome.reason
    return outcome


def check_frames(path: Path, frames: list[Frame]) -> None:
    """One frame (the middle one) of the header's size, float32, finite, in [0, 1]."""
    header = dcmread(path, stop_before_pixels=True, force=True)
    size = (int(header.Rows), int(header.Columns))
    assert len(frames) == 1
    pixels = frames[0].pixels
    assert pixels.dtype == np.float32
    assert pixels.shape in (size, (*size, 3)), f"{pixels.shape} for a {size} header"
    assert np.isfinite(pixels).all(), "non-finite pixels"
    assert pixels.min() >= 0.0 and pixels.max() <= 1.0, f"pixels in [{pixels.min()}, {pixels.max()}]"


def _keep(data: bytes, keep_dir: Path) -> Path:
    keep_dir.mkdir(parents=True, exist_ok=True)
    path = keep_dir / f"{hashlib.sha1(data).hexdigest()[:16]}.dcm"
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-dicom")


def run_case(data: bytes, workdir: Path, outcomes: Callable[[str], None]) -> None:
    """Write ``data``, read it under the bounds, check the outcome; keep the file if anything fails."""
    path = workdir / "case.dcm"
    path.write_bytes(data)
    try:
        outcome = read_bounded(path)
        if isinstance(outcome, UnreadableFile):
            outcomes(outcome.reason)
        else:
            check_frames(path, outcome)
            outcomes("frames")
    except BaseException as exc:
        kept = _keep(data, workdir.parent / "fuzz-failures")
        raise AssertionError(f"{type(exc).__name__}: {exc} (case kept at {kept})") from exc


OUTCOMES: dict[str, int] = {}


def _count(outcome: str) -> None:
    key = outcome if outcome == "frames" else outcome.split(":")[0][:60]
    OUTCOMES[key] = OUTCOMES.get(key, 0) + 1


@pytest.mark.parametrize("seed", SEEDS)
@settings(
    max_examples=max(1, EXAMPLES // len(SEEDS)),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_mutated_dicom_gives_frames_or_a_reason(seed: str, data: st.DataObject, workdir: Path) -> None:
    run_case(data.draw(mutated_files(seed)), workdir, _count)


@pytest.mark.parametrize("seed", SEEDS)
def test_seeds_read(seed: str, workdir: Path) -> None:
    """Every seed reads as it is: the mutations start from files the reader handles."""
    path = workdir / f"seed-{seed}"
    path.write_bytes(SEED_BYTES[seed])
    outcome = read_bounded(path)
    assert not isinstance(outcome, UnreadableFile), outcome
    check_frames(path, outcome)


@pytest.mark.parametrize("seed", ["MR_small.dcm", "JPEG2000.dcm", "MR_small_RLE.dcm"])
@pytest.mark.parametrize("frames", ["middle", "all"])
def test_gigantic_header_is_rejected_before_decoding(seed: str, frames: str, workdir: Path) -> None:
    """65535 x 65535 x 10000 frames on a few kB of pixel data: rejected from the header, fast, small."""
    ds = _seed_dataset(seed) if seed in SEEDS else dcmread(next(p for p in get_testdata_files() if p.endswith(seed)))
    for keyword, value in (("Rows", 65535), ("Columns", 65535), ("NumberOfFrames", "10000")):
        _set_raw(ds, keyword, "IS" if keyword == "NumberOfFrames" else "US", value)
    path = workdir / f"gigantic-{seed}"
    path.write_bytes(_to_bytes(ds))
    outcome = read_bounded(path, ReadOptions(frames=frames))  # type: ignore[arg-type]
    assert isinstance(outcome, UnreadableFile)
    assert outcome.reason.startswith("image too large: 65535 x 65535"), outcome.reason


# --- the corpus ------------------------------------------------------------------------------------

EXPECTED: dict[str, dict[str, str]] = json.loads((CORPUS / "expected.json").read_text())


def _corpus_params() -> list[Any]:
    params = []
    for name in sorted(p.name for p in CORPUS.glob("*.dcm")):
        entry = EXPECTED.get(name, {})
        marks = [pytest.mark.xfail(strict=True, reason=entry["xfail"])] if "xfail" in entry else []
        params.append(pytest.param(name, id=name, marks=marks))
    return params


def test_corpus_files_are_described() -> None:
    assert sorted(EXPECTED) == sorted(p.name for p in CORPUS.glob("*.dcm"))
    assert all((CORPUS / name).stat().st_size < 50_000 for name in EXPECTED)


def worker_outcome(path: Path) -> list[Frame] | UnreadableFile:
    """``read_file`` in a decoding worker, as an index run reads, with a 2 GiB address-space limit and a
    30 s timeout, so that a corpus case that crashes, hangs or allocates without bound fails one test,
    not the run."""
    try:
        return read_in_worker(path, ReadOptions(), Limits(CORPUS_TIMEOUT_S, CORPUS_MEMORY_BYTES))
    except UnreadableFile as exc:
        return exc


@pytest.mark.parametrize("name", _corpus_params())
def test_corpus_case(name: str) -> None:
    """A kept case gives the recorded outcome: ``frames``, or a reason starting with the recorded text;
    never a reason from the isolation itself (crash, timeout, memory limit, broken contract)."""
    expected = EXPECTED[name]["outcome"]
    path = CORPUS / name
    outcome = worker_outcome(path)
    if expected == "frames":
        assert not isinstance(outcome, UnreadableFile), outcome
        check_frames(path, outcome)
    else:
        assert isinstance(outcome, UnreadableFile), "expected UnreadableFile, got frames"
        assert not outcome.reason.startswith(ISOLATION_REASONS), outcome.reason
        assert outcome.reason.startswith(expected), outcome.reason


def test_a_failed_frame_leaves_no_unraisable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc
    import sys

    unraisable: list[str] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda hook: unraisable.append(repr(hook.exc_value)))
    with pytest.raises(UnreadableFile, match=r"^cannot convert pixels for display"):
        read_file(CORPUS / "palette_descriptor_bits_3.dcm", ReadOptions())
    gc.collect()
    assert unraisable == []
