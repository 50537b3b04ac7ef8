"""Upgrade a store in place: re-embed every image made with an older preprocessing version, reading each
file with the VOI options it was indexed with (``Image.read_options``; images from before those were kept
are read with the options given). One transaction per batch, like indexing: killed half way, the store
stays consistent (every image is whole, of one version or the other), and running it again finishes the
rest. Files missing from disk keep their old vectors and are counted, never removed."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from medsearch.errors import StoreError
from medsearch.indexer.discover import FileEntry
from medsearch.indexer.embedder import Embedder, model_record
from medsearch.indexer.frames import ReadOptions
from medsearch.indexer.pipeline import IndexReport, IndexSettings, Progress, embed_and_write, plan_work, start_run
from medsearch.indexer.plan import Plan
from medsearch.indexer.preprocess import PREPROCESSING_VERSION
from medsearch.indexer.read_back import options_from_key
from medsearch.storage.pixel_records import stale_count, stale_files
from medsearch.storage.store import ModelRecord, Store

CHUNK_FILES = 256
"""Files planned at a time (each chunk is then embedded and committed in batches)."""


@dataclass
class UpgradeReport:
    """``from_version``: the store's preprocessing before; ``reembedded``/``failed``: files;
    ``missing``: stale files not on disk (kept as they were); ``left``: stale files still in the store."""

    from_version: str
    to_version: str = PREPROCESSING_VERSION
    reembedded: int = 0
    failed: int = 0
    missing: int = 0
    left: int = 0


def upgrade_store(store: Store, get_embedder: Callable[[], Embedder], settings: IndexSettings | None = None,
                  progress: Progress | None = None, check_model: Callable[[], None] | None = None) -> UpgradeReport:
    """Re-embed the store's stale images (see the module doc). ``settings.read_options``: how to read
    images that carry no options of their own. ``check_model``: how a current store (nothing to re-embed)
    checks the model without loading it (default: the model is loaded and bound). Raises StoreError for an
    empty store, ModelMismatch when the model is not the store's (another revision or size)."""
    settings = settings or IndexSettings()
    stored = store.model_record()
    if stored is None:
        raise StoreError(f"The store at {store.directory} is empty; nothing to upgrade.")
    if stored.preprocessing_version == PREPROCESSING_VERSION and images_to_upgrade(store) == 0:
        (check_model or (lambda: store.bind_model(model_record(get_embedder()))))()
        return UpgradeReport(from_version=PREPROCESSING_VERSION)
    embedder = get_embedder()
    current = model_record(embedder)
    store.bind_model(ModelRecord(current.model_id, current.revision, current.dim, stored.preprocessing_version))
    report = UpgradeReport(from_version=store.adopt_preprocessing(PREPROCESSING_VERSION))
    run = IndexReport()
    settings, base, workers = start_run(store, embedder, settings, run)
    groups = stale_groups(store)
    total, done = sum(len(paths) for paths in groups.values()), 0
    for (key, keep_identity, all_frames), paths in groups.items():
        options = _options_for(base, key, keep_identity, all_frames)
        for start in range(0, len(paths), CHUNK_FILES):
            plan = _plan_for(paths[start : start + CHUNK_FILES], report)
            embed_and_write(store, embedder, plan_work(plan), settings, options, workers, run,
                            _offset(progress, done, total))
            done += len(plan.to_read)
    store.vectors.save_snapshot()
    report.reembedded, report.failed = run.updated, run.failed
    report.left = sum(len(paths) for paths in stale_groups(store).values())
    return report


def stale_groups(store: Store) -> dict[tuple[str | None, bool, bool], list[str]]:
    """Files with a stale image, sorted, grouped by (their read options, identity kept, all frames:
    more than one row)."""
    groups: dict[tuple[str | None, bool, bool], list[str]] = {}
    for path, key, identity, rows in stale_files(store, PREPROCESSING_VERSION):
        groups.setdefault((key, identity, rows > 1), []).append(path)
    return groups


def _options_for(base: ReadOptions, key: str | None, keep_identity: bool, all_frames: bool) -> ReadOptions:
    """The run's options with what an image was indexed with: its VOI options (``key``; None: the run's
    own), identity kept, every frame or the middle one."""
    frames: Literal["all", "middle"] = "all" if all_frames else "middle"
    return options_from_key(key, replace(base, keep_identity=keep_identity or base.keep_identity, frames=frames))


def _plan_for(paths: list[str], report: UpgradeReport) -> Plan:
    """A plan that reads ``paths`` again in place of their rows; missing files are counted and left."""
    plan = Plan()
    for path in paths:
        try:
            stat = os.stat(path)
        except OSError:
            report.missing += 1
            continue
        plan.to_read.append(FileEntry(path, stat.st_size, stat.st_mtime_ns))
        plan.changed.add(path)
    return plan


def _offset(progress: Progress | None, done: int, total: int) -> Progress | None:
    if progress is None:
        return None
    return lambda files, _chunk: progress(done + files, total)


def images_to_upgrade(store: Store) -> int:
    """How many images still wait for ``medsearch upgrade`` (another preprocessing version)."""
    return stale_count(store, PREPROCESSING_VERSION)
