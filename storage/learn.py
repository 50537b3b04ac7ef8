"""The SQL of ``medsearch.learn``: probes, split records, whole-field writes and content hashes.

Fields written here are ordinary ``ImageField`` rows (what ``import-metadata`` and ``classify --save-as``
write), so a probe's probabilities and a split's names are usable in ``--where``, cohort criteria,
``--group-by`` and exports like any sidecar column.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
from medsearch.errors import InvalidQuery, ModelMismatch, NotFound
from medsearch.storage.chunking import chunked
from medsearch.storage.cohort_models import Cohort, CohortRun
from medsearch.storage.learn_models import Probe, SplitRecord
from medsearch.storage.models import Image, ImageField
from medsearch.storage.store import ModelRecord, Store
from medsearch.storage.thumbnail_models import Thumbnail
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

FIELD_NAME_CHARACTERS = "_-."


def check_field_name(name: str) -> str:
    """``name`` if it is letters, digits, '_', '-' and '.'; raises InvalidQuery otherwise."""
    if not name or not all(c.isalnum() or c in FIELD_NAME_CHARACTERS for c in name):
        raise InvalidQuery(f"a field name takes letters, digits, '_', '-' and '.', not {name!r}")
    return name


def replace_field(store: Store, name: str, source: str, kind: str, values: dict[int, Any]) -> None:
    """Make field ``name`` hold exactly ``values`` ({image id: value}); ``kind`` is ``number`` or ``text``.
    Every older value of the field, from any source, is dropped first (one write transaction)."""
    with store.write_session() as session:
        _replace_field(session, name, source, kind, values)
    store.filter_cache.clear()  # fields changed, the generation did not


def _replace_field(session: Session, name: str, source: str, kind: str, values: dict[int, Any]) -> None:
    column = {"number": "number", "text": "text"}[kind]
    session.execute(delete(ImageField).where(ImageField.name == name))
    rows = [{"image_id": image_id, "name": name, "kind": kind, "number": None, "text": None, "date": None,
             column: value, "source": source} for image_id, value in values.items()]
    if rows:
        session.execute(insert(ImageField), rows)


def field_counts(store: Store, name: str) -> dict[str, int]:
    """{value: images} of a text field (a split). Raises NotFound when no image has it."""
    with store.read_session() as session:
        rows = session.execute(select(ImageField.text, func.count()).where(ImageField.name == name)
                               .group_by(ImageField.text).order_by(ImageField.text)).all()
    if not rows:
        raise NotFound(f"no image has a field named {name!r}")
    return {str(value): int(count) for value, count in rows}


def content_hashes(store: Store, ids: Sequence[int]) -> dict[int, str]:
    """{image id: content hash} of the ``ids`` still stored (bound ``chunking.CHUNK_SIZE`` at a time)."""
    with store.read_session() as session:
        rows = chunked(ids, lambda chunk: session.execute(
            select(Image.id, Image.content_hash).where(Image.id.in_(chunk))))
        return {int(i): h for i, h in rows}


def thumbnails_of(store: Store, ids: Sequence[int]) -> dict[int, bytes]:
    """{image id: PNG thumbnail} of the ``ids`` that have one (``medsearch.storage.thumbnails``)."""
    with store.read_session() as session:
        rows = chunked(ids, lambda chunk: session.execute(
            select(Thumbnail.image_id, Thumbnail.png).where(Thumbnail.image_id.in_(chunk))))
        return {int(i): png for i, png in rows}


def save_probe(store: Store, name: str, record: ModelRecord, weights: np.ndarray, bias: float,
               report: dict[str, Any]) -> None:
    """Save (or replace) probe ``name`` of model ``record``: (dim,) float32 ``weights``, ``bias`` and its
    JSON ``report``."""
    with store.write_session() as session:
        session.execute(delete(Probe).where(Probe.name == name))
        session.add(Probe(name=name, model_id=record.model_id, model_revision=record.revision, dim=record.dim,
                          preprocessing_version=record.preprocessing_version,
                          weights=np.ascontiguousarray(weights, dtype=np.float32).tobytes(), bias=float(bias),
                          report=json.dumps(report)))


def load_probe(store: Store, name: str) -> tuple[np.ndarray, float, dict[str, Any]]:
    """(weights (dim,) float32, bias, report) of probe ``name``. Raises NotFound, and ModelMismatch when
    the store's model is not the one it was trained on."""
    record = store.model_record()
    with store.read_session() as session:
        probe = session.scalar(select(Probe).where(Probe.name == name))
        if probe is None:
            raise NotFound(f"no probe named {name!r}; `medsearch probe list` shows them")
        _refuse_other_model(probe, record, f"probe {name!r} was trained on", "Train it again on this store")
        return np.frombuffer(probe.weights, dtype=np.float32), probe.bias, json.loads(probe.report)


def list_probes(store: Store) -> list[dict[str, Any]]:
    """Every probe: name, model, date and its report."""
    with store.read_session() as session:
        return [{"name": p.name, "model": p.model_id, "model_revision": p.model_revision,
                 "created_at": p.created_at.isoformat(timespec="seconds") + "Z", **json.loads(p.report)}
                for p in session.scalars(select(Probe).order_by(Probe.name))]


def save_split(store: Store, name: str, values: dict[int, str], definition: dict[str, Any],
               counts: dict[str, Any], cohort: str | None = None) -> None:
    """In one write transaction: make text field ``name`` hold exactly ``values`` ({image id: split name})
    and record how it was made, with the store's model record (replacing an older record). With
    ``cohort``: also keep the split in that cohort's definition (so a refresh re-makes it) and in its
    latest run's manifest (``splits``: {name: definition and counts}). Raises ModelMismatch when an
    older record of ``name`` was made on another model, NotFound for an unknown cohort."""
    record = store.model_record()
    with store.write_session() as session:
        _check_split_model(session.get(SplitRecord, name), record)
        _replace_field(session, name, f"split:{name}", "text", values)
        session.execute(delete(SplitRecord).where(SplitRecord.name == name))
        session.add(SplitRecord(name=name, definition=json.dumps(definition), counts=json.dumps(counts),
                                model_id=record.model_id if record else None,
                                model_revision=record.revision if record else None,
                                dim=record.dim if record else None,
                                preprocessing_version=record.preprocessing_version if record else None))
        if cohort is not None:
            _keep_in_cohort(session, cohort, name, definition, counts)
    store.filter_cache.clear()


def _keep_in_cohort(session: Session, name: str, split: str, definition: dict[str, Any],
                    counts: dict[str, Any]) -> None:
    cohort = session.scalar(select(Cohort).where(Cohort.name == name))
    if cohort is None:
        raise NotFound(f"no cohort named {name!r}; `medsearch cohort list` shows them")
    kept = json.loads(cohort.definition)
    kept.setdefault("splits", {})[split] = {k: v for k, v in definition.items() if k != "scope"}
    cohort.definition = json.dumps(kept)
    run = session.scalars(select(CohortRun).where(CohortRun.cohort_id == cohort.id)
                          .order_by(CohortRun.number.desc()).limit(1)).first()
    if run is not None:
        manifest = json.loads(run.manifest)
        manifest.setdefault("splits", {})[split] = {**kept["splits"][split], **counts}
        run.manifest = json.dumps(manifest)


def load_split(store: Store, name: str) -> dict[str, Any] | None:
    """{definition, counts, created_at, model} of split ``name``, or None when it was not made by
    ``split``. Raises ModelMismatch when it was made on a store of another model."""
    with store.read_session() as session:
        found = session.get(SplitRecord, name)
        if found is None:
            return None
        _check_split_model(found, store.model_record())
        return {"definition": json.loads(found.definition), "counts": json.loads(found.counts),
                "created_at": found.created_at.isoformat(timespec="seconds") + "Z",
                "model": {"id": found.model_id, "revision": found.model_revision}}


def _check_split_model(found: SplitRecord | None, record: ModelRecord | None) -> None:
    """Raises ModelMismatch when ``found`` was made on a store of another model than ``record``'s (records
    without a model, older than that column, and stores without one pass)."""
    if found is not None and found.model_id is not None and record is not None:
        _refuse_other_model(found, record, f"split {found.name!r} was made on a store of",
                            "Make it again under another name")


def _refuse_other_model(row: Probe | SplitRecord, record: ModelRecord | None, made_on: str, advice: str) -> None:
    """Raises ModelMismatch ``"{made_on} MODEL (REVISION); how it differs. {advice}"`` unless ``row``'s model
    record matches the store's ``record``."""
    made = ModelRecord(str(row.model_id), str(row.model_revision), int(row.dim or 0), str(row.preprocessing_version))
    problem = record.mismatch(made) if record is not None else "the store has no model"
    if problem:
        raise ModelMismatch(f"{made_on} {row.model_id} ({row.model_revision}); {problem}. {advice}")
