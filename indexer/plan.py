"""Compare the files on disk with the store: what is new, changed, unchanged, moved or gone.

Unchanged is decided by size + mtime, then by content hash (a touched file with the same bytes keeps its
vectors), and by how its pixels were made: an image of an older preprocessing version, or a greyscale
DICOM read with other VOI options (``medsearch.indexer.frames.read_key``), is read again.
A new path whose content hash equals that of a stored file that has vanished is a move: the stored rows
take the new path and keep their vectors.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from medsearch.indexer.discover import FileEntry
from medsearch.indexer.preprocess import PREPROCESSING_VERSION
from medsearch.storage.file_records import known_files
from medsearch.storage.snapshot import file_sha256 as file_hash
from medsearch.storage.store import Store
from medsearch.storage.writes import FileStat


@dataclass
class Plan:
    to_read: list[FileEntry] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)
    moves: list[tuple[str, FileStat]] = field(default_factory=list)
    touches: list[FileStat] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    vanished_failures: list[str] = field(default_factory=list)
    problems: list[tuple[FileStat, str]] = field(default_factory=list)  # found but not indexable: failures
    unchanged: int = 0
    known_failures: int = 0
    known_failed: list[str] = field(default_factory=list)  # the paths of known_failures: failed before, unchanged
    hashes: dict[str, str] = field(default_factory=dict)


def _under(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def make_plan(store: Store, entries: Iterable[FileEntry], roots: list[str], key: str | None = None) -> Plan:
    """Sort the discovered files into what to read and what to keep, move or remove. ``key``: this
    run's ``read_key``; None compares size, time and content only."""
    plan = Plan()
    known_rows = known_files(store, PREPROCESSING_VERSION, key)
    stored, failed, stale = known_rows.stored, known_rows.failed, known_rows.stale
    seen: set[str] = set()
    new: list[FileEntry] = []
    for entry in entries:
        seen.add(entry.path)
        known = stored.get(entry.path)
        if entry.problem is not None:
            _note_problem(plan, entry, failed.get(entry.path))
        elif known is None:
            if failed.get(entry.path) == (entry.size, entry.mtime_ns):
                plan.known_failures += 1
                plan.known_failed.append(entry.path)
            else:
                new.append(entry)
        elif entry.path in stale:
            plan.changed.add(entry.path)
            plan.to_read.append(entry)
        elif known[:2] == (entry.size, entry.mtime_ns):
            plan.unchanged += 1
        else:
            _compare_content(plan, entry, known[2])
    gone = {p: h for p, (_s, _m, h) in stored.items() if p not in seen and _under(p, roots)}
    _find_moves(plan, new, gone)
    plan.removed = sorted(gone)
    plan.vanished_failures = [p for p in failed if p not in seen and _under(p, roots)]
    return plan


def _note_problem(plan: Plan, entry: FileEntry, failed_stat: tuple[int | None, int | None] | None) -> None:
    if failed_stat == (entry.size, entry.mtime_ns):
        plan.known_failures += 1
        plan.known_failed.append(entry.path)
    else:
        plan.problems.append((FileStat(entry.path, entry.size, entry.mtime_ns), entry.problem or ""))


def _compare_content(plan: Plan, entry: FileEntry, stored_hash: str) -> None:
    digest = file_hash(entry.path)
    if digest == stored_hash:
        plan.touches.append(FileStat(entry.path, entry.size, entry.mtime_ns))
        plan.unchanged += 1
    else:
        plan.hashes[entry.path] = digest
        plan.changed.add(entry.path)
        plan.to_read.append(entry)


def _find_moves(plan: Plan, new: list[FileEntry], gone: dict[str, str]) -> None:
    """Match new files to vanished ones by content hash; ``gone`` keeps only the unmatched."""
    by_hash: dict[str, str] = {}
    for path, digest in gone.items():
        by_hash.setdefault(digest, path)
    for entry in new:
        if by_hash:
            digest = file_hash(entry.path)
            plan.hashes[entry.path] = digest
            old = by_hash.pop(digest, None)
            if old is not None:
                plan.moves.append((old, FileStat(entry.path, entry.size, entry.mtime_ns)))
                del gone[old]
                continue
        plan.to_read.append(entry)
