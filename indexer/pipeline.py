"""Compose the stages: discover -> plan -> read + preprocess (worker processes) -> embed -> write.
Times each stage; holds no format logic."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from medsearch.indexer.discover import FileEntry, discover
from medsearch.indexer.embedder import Embedder, model_record
from medsearch.indexer.frames import ReadOptions, read_key
from medsearch.indexer.load import Loaded, load_file
from medsearch.indexer.plan import Plan, make_plan
from medsearch.indexer.windows import parse_window
from medsearch.indexer.workers import Limits, ordered_map
from medsearch.storage import queries
from medsearch.storage.models import Root
from medsearch.storage.patient_key import patient_secret
from medsearch.storage.store import Store
from medsearch.storage.writes import Batch, FileStat, NewImage, forget_failures, record_failures, write_batch

Progress = Callable[[int, int], None]
"""Called with (files done, files to read)."""


@dataclass
class IndexReport:
    """What one indexing run did. Counts are files, except ``frames_added``."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    moved: int = 0
    removed: int = 0
    failed: int = 0
    frames_added: int = 0
    seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)
    precision: str | None = None  # of this run's vectors (None: nothing was embedded)
    sharded: int = 0  # files written to shards (``medsearch.indexer.distributed``), loaded later by ``load``
    other_precisions: list[str] = field(default_factory=list)  # already in the store
    reports: int = 0  # structured reports read as their study's report (``medsearch.indexer.dicom_sr``)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class IndexSettings:
    batch_size: int = 0  # 0: chosen from the device (default_batch_size)
    workers: int = -1  # -1: chosen from the cores
    read_options: ReadOptions = field(default_factory=ReadOptions)
    limits: Limits = field(default_factory=Limits)
    snapshot_every_s: float = field(default_factory=lambda: _env_seconds("MEDSEARCH_SNAPSHOT_EVERY_S", 300.0))


def _env_seconds(name: str, default: float) -> float:
    """A number of seconds from the environment (used by tests to force frequent snapshots)."""
    return float(os.environ.get(name) or default)


def default_batch_size(embedder: Embedder) -> int:
    """Images per model call: 16 on a CPU (larger batches gain nothing there and hold more memory); 64 on a
    GPU, which needs large batches to be kept busy."""
    return 64 if str(getattr(embedder, "device", "cpu")).startswith("cuda") else 16


def default_workers() -> int:
    """Decoding workers: the model takes the cores while it runs, so one less than the cores, at least 1."""
    return max(1, (os.cpu_count() or 2) - 1)


def index_paths(store: Store, get_embedder: Callable[[], Embedder], roots: list[Path],
                settings: IndexSettings | None = None, progress: Progress | None = None,
                embed: EmbedStep | None = None) -> IndexReport:
    """Index ``roots`` (folders or files) into ``store``: incremental, resumable, one transaction per
    batch. The model is loaded (``get_embedder``) only when there is something to embed. ``embed``: the
    executor of the reading and embedding (default ``embed_tasks``, in this process; see
    ``medsearch.indexer.distributed``). Raises ModelMismatch when the store holds another model's vectors,
    FileNotFoundError for a missing root."""
    settings = settings or IndexSettings()
    report = IndexReport()
    started = time.perf_counter()
    bound = store.model_record() is not None
    if bound:
        store.vectors.load()
    root_paths = [str(root.expanduser().resolve()) for root in roots]
    with _timed(report, "discover"):
        entries = list(discover(roots, skip=store.directory))
    with _timed(report, "plan"):
        options = settings.read_options
        plan = make_plan(store, entries, root_paths, read_key(options, parse_window(options.window)))
    _record_roots(store, root_paths)
    if bound:
        _commit_bookkeeping(store, plan, report)
    _record_problems(store, plan, report)
    if not plan.to_read:
        report.seconds = round(time.perf_counter() - started, 3)
        store.vectors.save_snapshot()
        return report
    try:
        (embed or embed_tasks)(store, get_embedder, plan_work(plan), settings, report, progress)
    finally:
        with _timed(report, "snapshot"):
            store.vectors.save_snapshot()
        report.seconds = round(time.perf_counter() - started, 3)
    return report


@dataclass
class Work:
    """What ``embed_tasks`` reads: ``tasks`` (picklable), how many, the worker-side ``load(task, options,
    preprocessor) -> Loaded``, ``failed(task, reason) -> Loaded`` for a task whose worker died, and the paths
    whose old rows the new ones replace."""

    tasks: Iterable[Any]
    total: int
    load: Callable[..., Loaded]
    failed: Callable[[Any, str], Loaded]
    changed: set[str] = field(default_factory=set)


EmbedStep = Callable[[Store, Callable[[], Embedder], Work, IndexSettings, "IndexReport", Progress | None], None]
"""An executor: reads, embeds and writes ``Work`` (``embed_tasks``, or ``medsearch.indexer.distributed``'s Ray one)."""


def embed_tasks(store: Store, get_embedder: Callable[[], Embedder], work: Work, settings: IndexSettings,
                report: IndexReport, progress: Progress | None = None) -> None:
    """Bind the model to the store, then read + preprocess ``work`` in worker processes, embed and commit in
    batches (files and fetched instances alike). Raises ModelMismatch."""
    embedder = get_embedder()
    settings, options, workers = start_run(store, embedder, settings, report)
    embed_and_write(store, embedder, work, settings, options, workers, report, progress)


def plan_work(plan: Plan) -> Work:
    """The files a plan reads, as ``Work`` for ``embed_and_write``."""
    tasks = ((entry, plan.hashes.get(entry.path)) for entry in plan.to_read)
    return Work(tasks, len(plan.to_read), _load_task, _failed, plan.changed)


def start_run(store: Store, embedder: Embedder, settings: IndexSettings,
              report: IndexReport) -> tuple[IndexSettings, ReadOptions, int]:
    """Before embedding: bind the model (raises ModelMismatch), note its precision, load the index; returns
    the settings with a batch size, the read options for the workers and the number of workers."""
    store.bind_model(model_record(embedder))
    report.precision = embedder.precision
    report.other_precisions = store.record_precision(embedder.precision)
    store.vectors.load()
    if settings.batch_size <= 0:
        settings = replace(settings, batch_size=default_batch_size(embedder))
    options = replace(settings.read_options, draft_size=embedder.preprocessor.size)
    options = replace(options, patient_key_secret=patient_secret(store, options.patient_key_secret))
    workers = default_workers() if settings.workers < 0 else settings.workers
    return settings, options, workers


def _record_roots(store: Store, roots: list[str]) -> None:
    with store.write_session() as session:
        for root in roots:
            if session.get(Root, root) is None:
                session.add(Root(path=root))


def _commit_bookkeeping(store: Store, plan: Plan, report: IndexReport) -> None:
    """Moves, touches and removals need no model: commit them first."""
    batch = Batch(remove_paths=plan.removed, moves=plan.moves, touches=plan.touches)
    if not batch.is_empty():
        write_batch(store, batch)
    if plan.vanished_failures:
        forget_failures(store, plan.vanished_failures)
    report.unchanged, report.moved, report.removed = plan.unchanged, len(plan.moves), len(plan.removed)
    report.failed = plan.known_failures
    if plan.known_failed:  # unchanged files that failed before: listed with their stored reason, not read again
        known = set(plan.known_failed)
        report.failures += [{**row, "known": "yes"} for row in queries.failures(store) if row["path"] in known]


def _record_problems(store: Store, plan: Plan, report: IndexReport) -> None:
    """Files found but not indexable (see ``medsearch.indexer.discover``) are failures, recorded without the model."""
    if plan.problems:
        record_failures(store, plan.problems)
    report.failed += len(plan.problems)
    report.failures += [{"path": stat.path, "reason": reason} for stat, reason in plan.problems]


def embed_and_write(store: Store, embedder: Embedder, work: Work, settings: IndexSettings, options: ReadOptions,
                     workers: int, report: IndexReport, progress: Progress | None) -> None:
    """Embed and commit in batches. The first batch is only as many files as there are workers, so the model
    starts once the workers' first files are decoded instead of waiting for a whole batch."""
    pending: list[Loaded] = []
    frames = 0
    goal = min(settings.batch_size, workers) if workers > 0 else settings.batch_size
    snapshots = Snapshots(store, settings.snapshot_every_s)
    for done, loaded in enumerate(_load_all(work, embedder, options, workers, settings), start=1):
        add_read_times(report, loaded)
        pending.append(loaded)
        frames += len(loaded.frames)
        if frames >= goal:
            _flush(store, embedder, pending, work.changed, settings.batch_size, report)
            pending, frames, goal = [], 0, settings.batch_size
            snapshots.after_commit()
        if progress:
            progress(done, work.total)
    if pending:
        _flush(store, embedder, pending, work.changed, settings.batch_size, report)


def add_read_times(report: IndexReport, loaded: Loaded) -> None:
    """Add a file's read and preprocess seconds (spent in a worker) to the report's stages."""
    report.stages["read"] = report.stages.get("read", 0.0) + loaded.read_seconds
    report.stages["preprocess"] = report.stages.get("preprocess", 0.0) + loaded.preprocess_seconds


class Snapshots:
    """Saves the store's FAISS snapshot after a commit once ``every_s`` seconds have passed since the last,
    so that a long run reopens quickly after a crash."""

    def __init__(self, store: Store, every_s: float) -> None:
        self.store, self.every_s, self.last = store, every_s, time.monotonic()

    def after_commit(self) -> None:
        if time.monotonic() - self.last > self.every_s:
            self.store.vectors.save_snapshot()
            self.last = time.monotonic()


def _load_all(work: Work, embedder: Embedder, options: ReadOptions, workers: int,
              settings: IndexSettings) -> Iterator[Loaded]:
    """Tasks in order, read and preprocessed by ``workers`` processes. A whole next batch is kept in
    flight, so that it is decoded while the model embeds the current one."""
    workers = min(workers, work.total)
    loads = ordered_map(work.load, work.tasks, workers, work.failed, options, embedder.preprocessor,
                        limits=settings.limits, in_flight=settings.batch_size + workers)
    for _task, loaded in loads:
        yield loaded


def _load_task(task: tuple[FileEntry, str | None], options: ReadOptions, preprocessor) -> Loaded:  # type: ignore[no-untyped-def]
    entry, digest = task
    return load_file(entry, options, preprocessor, digest)


def _failed(task: tuple[FileEntry, str | None], reason: str) -> Loaded:
    return Loaded(task[0], error=reason)


def _flush(store: Store, embedder: Embedder, files: list[Loaded], changed: set[str], batch_size: int,
           report: IndexReport) -> None:
    """Embed the frames of ``files`` and commit them, with their failures, as one batch."""
    pixels = [frame[1] for loaded in embeddable(files) for frame in loaded.frames]
    with _timed(report, "embed"):
        vectors = [embedder.embed_images(np.stack(pixels[start : start + batch_size]))
                   for start in range(0, len(pixels), batch_size)]
    matrix = np.vstack(vectors) if vectors else np.empty((0, embedder.dim), dtype=np.float32)
    write_loaded(store, files, matrix, changed, report)


def embeddable(files: list[Loaded]) -> list[Loaded]:
    """The files of a batch that have frames to embed, in order."""
    return [loaded for loaded in files if has_frames(loaded)]


def has_frames(loaded: Loaded) -> bool:
    """Whether ``loaded`` was read without error and has frames to embed."""
    return loaded.error is None and bool(loaded.frames)


def write_loaded(store: Store, files: list[Loaded], matrix: np.ndarray, changed: set[str],
                 report: IndexReport) -> None:
    """The one writer: commit ``files`` as one batch. ``matrix``: (frames, dim) float32, one row per frame
    of ``embeddable(files)`` in order; files with an error (or no frames) are recorded as failures."""
    batch = Batch(replace_paths={loaded.entry.path for loaded in files if loaded.entry.path in changed})
    row = 0
    for loaded in embeddable(files):
        for (frame_number, _pixels, metadata), thumbnail in zip(loaded.frames, loaded.thumbnails, strict=True):
            entry = loaded.entry
            batch.images.append(NewImage(entry.path, frame_number, entry.size, entry.mtime_ns, loaded.content_hash,
                                         matrix[row], metadata, thumbnail))
            row += 1
        if loaded.entry.path in changed:
            report.updated += 1
        else:
            report.added += 1
        report.frames_added += len(loaded.frames)
    for loaded in files:
        if has_frames(loaded) and loaded.damaged:  # the good frames are stored; the damaged ones recorded
            reason = f"{len(loaded.damaged)} damaged frame(s) left out: {'; '.join(loaded.damaged[:3])}"
            batch.failures.append((FileStat(loaded.entry.path, loaded.entry.size, loaded.entry.mtime_ns), reason))
            report.failures.append({"path": loaded.entry.path, "reason": reason})
        if not has_frames(loaded) and loaded.report is None:
            reason = loaded.error or "no frames"
            batch.failures.append((FileStat(loaded.entry.path, loaded.entry.size, loaded.entry.mtime_ns), reason))
            report.failed += 1
            report.failures.append({"path": loaded.entry.path, "reason": reason})
    _take_reports(store, files, batch, report)
    with _timed(report, "write"):
        write_batch(store, batch)


def _take_reports(store: Store, files: list[Loaded], batch: Batch, report: IndexReport) -> None:
    """Store the structured reports among ``files`` (``store.reports.take``); those it cannot read are
    failures of ``batch``."""
    found = [loaded for loaded in files if loaded.report is not None]
    if not found:
        return
    with _timed(report, "reports"):
        taken, refused = store.reports.take([loaded.report for loaded in found if loaded.report is not None])
    why = {id(raw): reason for raw, reason in refused}
    for loaded in found:
        reason = why.get(id(loaded.report))
        if reason is None:
            continue
        batch.failures.append((FileStat(loaded.entry.path, loaded.entry.size, loaded.entry.mtime_ns), reason))
        report.failed += 1
        report.failures.append({"path": loaded.entry.path, "reason": reason})
    report.reports += taken
    read = [loaded.entry.path for loaded in found if id(loaded.report) not in why]
    if read:
        forget_failures(store, read)


class _timed:
    def __init__(self, report: IndexReport, stage: str) -> None:
        self.report, self.stage = report, stage

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, *_exc: object) -> None:
        elapsed = time.perf_counter() - self.started
        self.report.stages[self.stage] = round(self.report.stages.get(self.stage, 0.0) + elapsed, 4)
