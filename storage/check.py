"""Verify a store, and repair what can be repaired without the images or the model.

Checks, in order: the database's own integrity (SQLite ``PRAGMA integrity_check``), the model record,
every stored vector (size = the record's dimension, finite, unit norm), the FAISS snapshot (manifest,
checksum, count, generation) and an ivf-pq index's vector file (checksum, ids), the in-memory index
and vector file against the database (same ids), leftover temporary files of an interrupted snapshot
write, and whether the indexed files are still on disk (instances of a DICOMweb source are checked
against the source instead, by the ``check_remote`` given).

``repair=True`` (needs a writable store): removes images whose vectors are damaged (the next index run
embeds their files again), rebuilds the FAISS snapshot from the database, and deletes stale temporary
files. A damaged database or missing image files are reported, never "repaired".
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from medsearch.storage import rerank_vectors, shrink, snapshot, vector_codec, vectors
from medsearch.storage.index_choice import RETRAIN_FRACTION, IndexType, is_trained_kind
from medsearch.storage.models import Deletion, Failure, Image
from medsearch.storage.store import DB_FILE, SCHEMA_VERSION, Store
from medsearch.storage.units import rebuild_units, stale_units
from medsearch.storage.writes import Batch, write_batch
from sqlalchemy import func, select, text

NORM_TOLERANCE = 1e-3
REMOTE_PREFIX = "dicomweb+"
RemoteCheck = Callable[[Store, "CheckReport"], None]
"""Checks the store's DICOMweb instances against their sources, adding notes and problems to the report."""


@dataclass
class Problem:
    """One finding. ``kind`` is a stable name; ``repairable`` says whether ``repair=True`` can fix it."""

    kind: str
    message: str
    repairable: bool = False
    repaired: bool = False


@dataclass
class CheckReport:
    """What ``check_store`` found (and repaired). ``ok``: no unrepaired problem is left."""

    problems: list[Problem] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # advice that is no problem (the store is sound)

    @property
    def ok(self) -> bool:
        return all(problem.repaired for problem in self.problems)

    @property
    def repairable(self) -> bool:
        """Whether ``repair=True`` would fix a problem that is left."""
        return any(problem.repairable and not problem.repaired for problem in self.problems)

    def add(self, kind: str, message: str, repairable: bool = False) -> Problem:
        problem = Problem(kind, message, repairable)
        self.problems.append(problem)
        return problem

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": [asdict(p) for p in self.problems], "facts": self.facts,
                "failures": self.failures, "notes": self.notes}


def check_store(store: Store, repair: bool = False, check_remote: RemoteCheck | None = None) -> CheckReport:
    """Check ``store``; with ``repair`` (the store must be writable, else ValueError) fix what is
    repairable; ``check_remote`` checks the instances of DICOMweb sources (the CLI passes
    ``medsearch.indexer.dicomweb.verify.check_sources``). Raises StoreError only when the store cannot be
    read at all."""
    report = CheckReport()
    if not _database_ok(store, report):
        return report
    record = store.model_record()
    with store.read_session() as session:
        images = session.scalar(select(func.count()).select_from(Image)) or 0
        rows = session.execute(select(Failure.path, Failure.reason))
        report.failures = [{"path": path, "reason": reason} for path, reason in rows]
    report.facts.update(images=images, generation=store.generation(), failures=len(report.failures))
    if record is None:
        if images:
            report.add("model_record", f"{images} images but no model record")
        return report
    if (info := store.info()) is not None and info.schema_version != SCHEMA_VERSION:
        report.add("model_record", f"schema version {info.schema_version}, expected {SCHEMA_VERSION}")
    report.facts.update(model=record.model_id, revision=record.revision, dimension=record.dim)
    if record.dim <= 0:
        report.add("model_record", f"the model record's dimension is {record.dim}")
        return report
    damaged = _damaged_vectors(store, record.dim, report)
    stale = _stale_temporaries(store.directory, report)
    rebuild = _snapshot_problems(store, record.dim, record.revision, report, images)
    if not damaged:
        rebuild = _index_problems(store, record.dim, record.revision, report) or rebuild
    retrain = _training_problem(store, report)
    _vector_format(store, record.dim, report)
    units = stale_units(store)
    if units:
        report.add("units", f"{len(units)} series/study vectors out of step with their images (e.g. "
                   f"{units[0][0]} {units[0][1]})", repairable=True)
    if repair:
        rebuild_units(store, units)
        _repair(store, report, damaged, stale, rebuild or bool(damaged), retrain)
        _index_problems(store, record.dim, record.revision, report)
    _missing_files(store, report)
    if check_remote is not None and report.facts["remote_instances"]:
        check_remote(store, report)
    return report


def _database_ok(store: Store, report: CheckReport) -> bool:
    if store.engine.dialect.name != "sqlite":
        return True
    with store.engine.connect() as connection:
        rows = [row[0] for row in connection.execute(text("PRAGMA integrity_check"))]
    if rows != ["ok"]:
        report.add("database", "SQLite integrity check failed: " + "; ".join(rows[:5]))
        return False
    return True


def _damaged_vectors(store: Store, dim: int, report: CheckReport) -> list[tuple[int, str]]:
    """(id, path) of every image whose vector has the wrong size, is not finite or not unit length."""
    damaged: list[tuple[int, str]] = []
    with store.read_session() as session:
        query = select(Image.id, Image.path, Image.embedding).execution_options(yield_per=5000)
        result = session.execute(query)
        for chunk in result.partitions():
            for image_id, path, blob in chunk:
                reason = _vector_problem(blob, dim)
                if reason:
                    damaged.append((image_id, path))
                    report.add("vector", f"image {image_id} ({path}): {reason}", repairable=True)
    return damaged


def _vector_problem(blob: bytes | None, dim: int) -> str | None:
    if blob is None or vector_codec.stored_dim(blob) != dim:
        return f"vector of {0 if blob is None else len(blob)} bytes, expected {dim} components"
    vector = vector_codec.decode(blob)
    if not np.isfinite(vector).all():
        return "vector holds NaN or infinity"
    norm = float(np.linalg.norm(vector.astype(np.float64)))
    if abs(norm - 1.0) > NORM_TOLERANCE:
        return f"vector norm {norm:.4f}, expected 1"
    return None


def _stale_temporaries(directory: Path, report: CheckReport) -> list[Path]:
    stale = [path for name in (snapshot.INDEX_FILE, snapshot.MANIFEST_FILE, DB_FILE, snapshot.VECTORS_TEMPORARY)
             for path in sorted(directory.glob(f"{name}.tmp*"))]
    for path in stale:
        report.add("temporary_file", f"{path.name} left by an interrupted snapshot write or compaction",
                   repairable=True)
    if snapshot.read_manifest(directory) is not None:  # without one, every index file may be the only copy
        for path in snapshot.unnamed_index_files(directory):
            report.add("temporary_file", f"{path.name} is named by no manifest (an interrupted snapshot write)",
                       repairable=True)
            stale.append(path)
    return stale


def _snapshot_problems(store: Store, dim: int, revision: str, report: CheckReport, images: int) -> bool:
    """Whether the FAISS snapshot needs rewriting; adds a problem saying why. No snapshot at all (a first
    index run stopped before its first snapshot) is no problem but a note: the store rebuilds its index from
    the database on open, and the ids are compared by ``_index_problems``."""
    directory, generation = store.directory, store.generation()
    manifest_path = directory / snapshot.MANIFEST_FILE
    if not manifest_path.exists() and not list(directory.glob("index*.faiss")):
        report.facts["snapshot_generation"] = None
        if images:  # a first index stopped before its first snapshot: the database is the truth
            report.notes.append(f"no FAISS snapshot yet (a first index stopped before writing one): the next "
                                f"open rebuilds the index from the database's {images} images, and the next "
                                "index run or --repair writes the snapshot")
        return False
    loaded = snapshot.load_snapshot(directory, dim, revision)
    if loaded is None:
        report.add("snapshot", "the FAISS snapshot is missing, damaged, or its checksum or manifest does not "
                   "match", repairable=True)
        return True
    index, manifest = loaded
    report.facts["snapshot_generation"] = manifest.generation
    report.facts["search_width"] = manifest.search_width
    if (problem := rerank_vectors.file_problem(directory, manifest, dim, index)) is not None:
        report.add("vector_file", f"{problem}; repair rebuilds it from the database", repairable=True)
        return True
    info = store.info()
    recorded = IndexType.parse(info.index_type) if info else IndexType.FLAT
    if manifest.index_type != recorded and not (is_trained_kind(recorded) and manifest.count == 0):
        report.add("index_type", f"the database records a {recorded} index but the snapshot is {manifest.index_type} "
                   f"(an interrupted reindex); repair rebuilds it as {recorded}", repairable=True)
        return True
    if manifest.generation > generation:
        report.add("snapshot", f"the snapshot's generation {manifest.generation} is ahead of the database's "
                   f"{generation}", repairable=True)
        return True
    return False


def _index_problems(store: Store, dim: int, revision: str, report: CheckReport) -> bool:
    """Whether the snapshot replayed to the database's generation, or the index the store serves, holds
    other ids than the database; adds a problem saying which."""
    with store.read_session() as session, session.begin():
        stored = set(session.scalars(select(Image.id)))
        loaded = snapshot.load_snapshot(store.directory, dim, revision)
        replayed = None
        if loaded is not None:
            generation = loaded[1].generation
            gone = set(session.scalars(select(Deletion.image_id).where(Deletion.generation > generation)))
            newer = set(session.scalars(select(Image.id).where(Image.generation > generation)))
            replayed = (set(vectors.ids(loaded[0]).tolist()) - gone) | newer
    served = store.vectors.ids()
    report.facts["index_count"] = len(served)
    rerank = store.vectors.vector_file()
    in_file = None if rerank is None else set(rerank.held_ids().tolist())
    found = False
    for name, ids, count in (("snapshot", replayed, None), ("index", set(served.tolist()), len(served)),
                             ("vector_file", in_file, None)):
        if ids is not None and (ids != stored or (count is not None and count != len(stored))):
            report.add(name, f"the {name} and the database disagree: {len(ids - stored)} ids only in the "
                       f"{name}, {len(stored - ids)} only in the database", repairable=True)
            found = True
    return found


def _training_problem(store: Store, report: CheckReport) -> bool:
    """Whether a trained (IVF) index holds more vectors added since its training than
    ``RETRAIN_FRACTION`` allows; adds the problem saying so."""
    added, total = store.vectors.added_after_training()
    kind = store.vectors.kind()
    if not is_trained_kind(kind):
        return False
    report.facts["added_after_training"] = added
    if total == 0 or added <= RETRAIN_FRACTION * total:
        return False
    report.add("retrain", f"{added} of the {kind} index's {total} vectors ({100 * added / total:.0f} %) were added "
               f"after it was trained, and its recall drops past {100 * RETRAIN_FRACTION:.0f} %: run `medsearch "
               f"reindex --index-type {kind}` (or check --repair) to retrain it", repairable=True)
    return True


def _vector_format(store: Store, dim: int, report: CheckReport) -> None:
    """Count the vectors still stored as older stores keep them (in the images rows, float32, float16 or 12
    bits), with the way to move them."""
    with store.read_session() as session:
        older = session.scalar(select(func.count()).select_from(Image).where(shrink.older_form())) or 0
    report.facts["older_vectors"] = older
    if older:
        report.notes.append(f"{older} vectors are stored as older stores keep them (in the images rows, up to "
                            f"{4 * dim} bytes each); `medsearch upgrade --vectors-only` moves them to their own "
                            f"table in 12 bits ({len(vector_codec.encode(np.zeros(dim)))} bytes), which the "
                            "page cache holds better")


def _missing_files(store: Store, report: CheckReport) -> None:
    """Indexed files no longer on disk. Instances of a DICOMweb source (``dicomweb+`` paths) are not files:
    they are counted here and checked against their source by ``check_remote``."""
    with store.read_session() as session:
        paths = list(session.scalars(select(Image.path).distinct()))
    remote = sum(1 for path in paths if path.startswith(REMOTE_PREFIX))
    missing = [path for path in paths if not path.startswith(REMOTE_PREFIX) and not os.path.exists(path)]
    report.facts["files"] = len(paths) - remote
    report.facts["remote_instances"] = remote
    for path in missing:
        report.add("missing_file", f"{path} is indexed but no longer on disk (index its folder again to "
                   "drop it)")


def _repair(store: Store, report: CheckReport, damaged: list[tuple[int, str]], stale: list[Path],
            rebuild: bool, retrain: bool = False) -> None:
    if not store.writable:
        raise ValueError("repair needs a store opened for writing")
    for path in stale:
        path.unlink(missing_ok=True)
    if damaged:
        write_batch(store, Batch(remove_paths=sorted({path for _id, path in damaged})))
    if retrain:
        store.vectors.reindex(store.vectors.kind())
    elif rebuild:
        store.vectors.rebuild()
    store.vectors.save_snapshot()
    report.facts["snapshot_generation"] = store.generation()
    for problem in report.problems:
        problem.repaired = problem.repairable
