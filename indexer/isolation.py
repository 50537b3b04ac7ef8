"""Crash-isolated decoding.

Native decoders (libjpeg, OpenJPEG, CharLS, the Rust RLE decoder) run inside the interpreter. They can
raise exceptions that do not derive from ``Exception`` (pyo3's ``PanicException`` is a
``BaseException``), exhaust memory, loop for a long time, or crash the process outright.

* ``DecodeGuard``: in-process; turns any exception of a decode step (``BaseException`` included, except
  ``KeyboardInterrupt``, ``SystemExit`` and ``GeneratorExit``) into ``UnreadableFile``.
* ``codestream_size``: the size a JPEG, JPEG-LS or JPEG 2000 frame declares in its own header, which
  is what those decoders allocate for; the DICOM reader rejects frames that disagree with Rows/Columns
  before decoding them (a 3 KB codestream can otherwise claim gigabytes).
* ``read_isolated``: runs a whole read in a child process with a time and a memory limit, so that a
  crash, a hang or a runaway allocation costs one file, not the indexer.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import signal
import struct
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType

from indexer.frames import Frame, ReadOptions
from storage.errors import UnreadableFile

ReadFunction = Callable[[Path, ReadOptions], list[Frame]]
_PASS_THROUGH = (KeyboardInterrupt, SystemExit, GeneratorExit, UnreadableFile)
_J2K_SOC_SIZ = b"\xff\x4f\xff\x51"
_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  "
_JPEG_SOF = {*range(0xC0, 0xD0)} - {0xC4, 0xC8, 0xCC} | {0xF7}  # SOF0-15 and JPEG-LS SOF55
# Third-party modules only: the forkserver does not take the caller's sys.path (Python 3.11), so our
# own modules are imported in each child, after it has taken the caller's sys.path, from the right place.
_PRELOAD = [
    "numpy",
    "PIL.Image",
    "PIL.PngImagePlugin",
    "PIL.TiffImagePlugin",
    "PIL.JpegImagePlugin",
    "pydicom",
    "pydicom.pixels",
    "pydicom.encaps",
    "pydicom.pixels.decoders.pylibjpeg",
]


class DecodeGuard:
    """``with DecodeGuard("cannot decode pixel data"): ...`` -> ``UnreadableFile("<what>: <error>")``
    for any exception in the block; ``UnreadableFile`` and interpreter exits pass through unchanged."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> DecodeGuard:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None or isinstance(exc, _PASS_THROUGH):
            return
        if isinstance(exc, MemoryError):
            raise UnreadableFile(f"{self.what}: out of memory") from exc
        raise UnreadableFile(f"{self.what}: {describe(exc)}") from exc


def describe(exc: BaseException, limit: int = 300) -> str:
    """``"TypeName: message"`` on one line, at most ``limit`` characters."""
    message = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def codestream_size(frame: bytes) -> tuple[int, int] | None:
    """``(width, height)`` declared by a JPEG 2000 (SIZ marker, in a JP2 wrapper or not), JPEG or
    JPEG-LS (SOFn marker) frame; None when the frame is neither or the size is not in the header.

    Raises ValueError for a JP2 wrapper with a zero-length box before the codestream (pydicom 3.0's
    JP2 parser loops forever on one)."""
    start = _jp2_codestream_offset(frame) if frame.startswith(_JP2_SIGNATURE) else 0
    if frame.startswith(_J2K_SOC_SIZ, start) and len(frame) >= start + 24:
        x_size, y_size, x_origin, y_origin = struct.unpack_from(">4L", frame, start + 8)
        return x_size - x_origin, y_size - y_origin
    if not frame.startswith(b"\xff\xd8"):
        return None
    position = 2
    while position + 9 <= len(frame) and frame[position] == 0xFF:
        marker = frame[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
        elif marker in _JPEG_SOF:
            height, width = struct.unpack_from(">HH", frame, position + 5)
            return (width, height) if height else None  # height 0: set later by a DNL marker
        elif marker in (0xDA, 0xD9):  # start of scan, end of image: no frame header before
            return None
        else:
            position += 2 + struct.unpack_from(">H", frame, position + 2)[0]
    return None


def _jp2_codestream_offset(frame: bytes) -> int:
    """Where the codestream (``jp2c`` box contents) starts in a JP2-wrapped frame; ``len(frame)``
    when there is no such box."""
    offset = 12  # after the signature box
    while offset < len(frame):
        length = int.from_bytes(frame[offset : offset + 4], "big")
        if frame[offset + 4 : offset + 8] == b"jp2c":
            return offset + 8
        if length == 0:
            raise ValueError("malformed JP2 wrapper: a zero-length box before the codestream")
        offset += length
    return len(frame)


def read_isolated(
    path: Path,
    options: ReadOptions,
    timeout_s: float,
    memory_bytes: int,
    reader: ReadFunction | None = None,
) -> list[Frame]:
    """Read ``path`` in a child process and return its frames.

    ``reader``: the read function (default ``indexer.readers.read_file``); it must be picklable (a
    module-level function). ``memory_bytes``: how much address space the read may add to the child's
    start-up size (``RLIMIT_AS``). The child is forked from a ``forkserver`` that has numpy, Pillow and
    pydicom imported already, so a call costs tens of milliseconds, not an interpreter start. Unix only.

    Raises ``UnreadableFile``: the reader's own reason; ``"decoder crashed (signal 11: SIGSEGV)"``;
    ``"decoding took longer than 30 s"``; ``"decoding needed more than 512 MB"``. Not callable from a
    daemonic process (``multiprocessing.Pool`` workers): use ``concurrent.futures`` workers there.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_child_main, args=(sender, path, options, memory_bytes, reader), daemon=True
    )
    child.start()
    sender.close()
    try:
        return _await_result(receiver, child, timeout_s, memory_bytes)
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join()
        child.close()


def _await_result(
    receiver: Connection, child: multiprocessing.process.BaseProcess, timeout_s: float, memory_bytes: int
) -> list[Frame]:
    """The child's frames, or the ``UnreadableFile`` that says why there are none."""
    if not receiver.poll(timeout_s):
        raise UnreadableFile(f"decoding took longer than {timeout_s:g} s")
    try:
        kind, payload = receiver.recv()
    except (EOFError, OSError):  # the child died without a word
        child.join(5.0)
        raise UnreadableFile(_death_reason(child.exitcode)) from None
    if kind == "frames":
        return payload
    if kind == "memory":
        raise UnreadableFile(f"decoding needed more than {memory_bytes // 2**20} MB")
    raise UnreadableFile(payload)


def _death_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = "unknown signal"
        return f"decoder crashed (signal {-exitcode}: {name})"
    return f"decoder process exited without a result (exit code {exitcode})"


def _child_main(
    sender: Connection, path: Path, options: ReadOptions, memory_bytes: int, reader: ReadFunction | None
) -> None:
    """Child process: limit memory, read, send ``(kind, payload)``: frames, memory, or a reason."""
    if reader is None:
        from indexer.readers import read_file

        reader = read_file
    try:
        _limit_address_space(memory_bytes)
        message: tuple[str, object] = ("frames", reader(path, options))
    except UnreadableFile as exc:  # a decoder's MemoryError, turned into a reason by DecodeGuard
        message = ("memory", None) if isinstance(exc.__cause__, MemoryError) else ("unreadable", exc.reason)
    except MemoryError:
        message = ("memory", None)
    except BaseException as exc:  # the reader broke its contract; report it as a reason, not a crash
        message = ("unreadable", f"reader failed: {describe(exc)}")
    try:
        sender.send(message)
    except MemoryError:
        sender.send(("memory", None))
    finally:
        sender.close()


def _limit_address_space(extra_bytes: int) -> None:
    """``RLIMIT_AS`` = the current address space (from /proc, where there is one) + ``extra_bytes``;
    no core files (a crashing decoder would otherwise dump its whole address space)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    current = 0
    try:
        with open("/proc/self/statm") as handle:
            current = int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = current + int(extra_bytes)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
