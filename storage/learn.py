"""The SQL of ``search.learn``: probes, split records, whole-field writes and content hashes.

Fields written here are ordinary ``ImageField`` rows (what ``import-metadata`` and ``classify --save-as``
write), so a probe's probabilities and a split's names are usable in ``--where``, cohort criteria,
``--group-by`` and exports like any sidecar column.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from storage.errors import InvalidQuery, ModelMismatch, NotFound
from storage.learn_models import Probe, SplitRecord
from storage.models import Image, ImageField
from storage.store import ModelRecord

FIELD_NAME_CHARACTERS = "_-."


def check_field_name(name: str) -> str:
    """``name`` if it is letters, digits, '_', '-' and '.'; raises InvalidQuery otherwise."""
    if not name or not all(c.isalnum() or c in FIELD_NAME_CHARACTERS for c in name):
        raise InvalidQuery(f"a field name takes letters, digits, '_', '-' and '.', not {name!r}")
    return name


def replace_field(session: Session, name: str, source: str, kind: str, values: dict[int, Any]) -> None:
    """Make field ``name`` hold exactly ``values`` ({image id: value}); ``kind`` is ``number`` or ``text``.
    Every older value of the field, from any source, is dropped first."""
    column = {"number": "number", "text": "text"}[kind]
    session.execute(delete(ImageField).where(ImageField.name == name))
    rows = [{"image_id": image_id, "name": name, "kind": kind, "number": None, "text": None, "date": None,
             column: value, "source": source} for image_id, value in values.items()]
    if rows:
        session.execute(insert(ImageField), rows)


def field_counts(session: Session, name: str) -> dict[str, int]:
    """{value: images} of a text field (a split). Raises NotFound when no image has it."""
    rows = session.execute(select(ImageField.text, func.count()).where(ImageField.name == name)
                           .group_by(ImageField.text).order_by(ImageField.text)).all()
    if not rows:
        raise NotFound(f"no image has a field named {name!r}")
    return {str(value): int(count) for value, count in rows}


def content_hashes(session: Session, ids: Sequence[int]) -> dict[int, str]:
    """{image id: content hash} of ``ids``."""
    wanted = list(ids)
    out: dict[int, str] = {}
    for start in range(0, len(wanted), 4096):
        query = select(Image.id, Image.content_hash).where(Image.id.in_(wanted[start : start + 4096]))
        out.update({int(i): h for i, h in session.execute(query)})
    return out


def save_probe(session: Session, name: str, record: ModelRecord, weights: np.ndarray, bias: float,
               report: dict[str, Any]) -> None:
    """Save (or replace) probe ``name``: (dim,) float32 ``weights``, ``bias`` and its JSON ``report``."""
    session.execute(delete(Probe).where(Probe.name == name))
    session.add(Probe(name=name, model_id=record.model_id, model_revision=record.revision, dim=record.dim,
                      preprocessing_version=record.preprocessing_version,
                      weights=np.ascontiguousarray(weights, dtype=np.float32).tobytes(), bias=float(bias),
                      report=json.dumps(report)))


def load_probe(session: Session, name: str, record: ModelRecord | None) -> tuple[np.ndarray, float, dict[str, Any]]:
    """(weights (dim,) float32, bias, report) of probe ``name``. Raises NotFound, and ModelMismatch when
    ``record`` (the store's model) is not the one it was trained on."""
    probe = session.scalar(select(Probe).where(Probe.name == name))
    if probe is None:
        raise NotFound(f"no probe named {name!r}; `medsearch probe list` shows them")
    trained = ModelRecord(probe.model_id, probe.model_revision, probe.dim, probe.preprocessing_version)
    problem = record.mismatch(trained) if record is not None else "the store has no model"
    if problem:
        raise ModelMismatch(f"probe {name!r} was trained on {probe.model_id} ({probe.model_revision}); "
                            f"{problem}. Train it again on this store")
    return np.frombuffer(probe.weights, dtype=np.float32), probe.bias, json.loads(probe.report)


def list_probes(session: Session) -> list[dict[str, Any]]:
    """Every probe: name, model, date and its report."""
    return [{"name": p.name, "model": p.model_id, "model_revision": p.model_revision,
             "created_at": p.created_at.isoformat(timespec="seconds") + "Z", **json.loads(p.report)}
            for p in session.scalars(select(Probe).order_by(Probe.name))]


def save_split(session: Session, name: str, definition: dict[str, Any], counts: dict[str, Any]) -> None:
    """Record how split field ``name`` was made (replacing an older record)."""
    session.execute(delete(SplitRecord).where(SplitRecord.name == name))
    session.add(SplitRecord(name=name, definition=json.dumps(definition), counts=json.dumps(counts)))


def load_split(session: Session, name: str) -> dict[str, Any] | None:
    """{definition, counts, created_at} of split ``name``, or None when it was not made by ``split``."""
    found = session.get(SplitRecord, name)
    if found is None:
        return None
    return {"definition": json.loads(found.definition), "counts": json.loads(found.counts),
            "created_at": found.created_at.isoformat(timespec="seconds") + "Z"}
