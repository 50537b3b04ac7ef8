"""Reading one file the way an index run does: in a decoding worker of ``medsearch.indexer.workers.ordered_map``,
so that a crash, a hang or a runaway allocation costs one test, not the run, and is reported with the
reason an index run would record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medsearch.errors import UnreadableFile
from medsearch.indexer.frames import Frame, ReadOptions
from medsearch.indexer.readers import read_file
from medsearch.indexer.workers import Limits, ordered_map

TEST_LIMITS = Limits(seconds=30.0, memory_bytes=2 << 30)
"""Index runs allow 300 s and 8 GiB per file; tests allow less of both."""


def read_in_worker(path: Path, options: ReadOptions | None = None, limits: Limits = TEST_LIMITS,
                   reader: Any = read_file) -> list[Frame]:
    """``reader(path, options)`` (a module-level function) in one worker. Raises ``UnreadableFile``: the
    reader's own reason, or the worker's (crashed, took longer than, needed more than)."""
    ((_path, outcome),) = ordered_map(reader, [path], 1, _failure, options or ReadOptions(), limits=limits)
    if isinstance(outcome, UnreadableFile):
        raise outcome
    return outcome


def _failure(path: Path, reason: str) -> UnreadableFile:
    return UnreadableFile(reason)
