"""A patient's timeline: every study of the patient of an image, series or study, oldest first, each
with its best-matching image for a query. The patient is found through the keyed patient hash
(``patient_key``), never an identity, and no other patient's study can appear."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from medsearch.errors import InvalidQuery, NotFound
from medsearch.storage import queries, units, vector_codec
from medsearch.storage.store import Store


@dataclass
class TimelineStudy:
    """One study of the patient; ``current`` marks the study of the target."""

    study_instance_uid: str
    study_date: str | None
    modality: str | None
    description: str | None
    series: int
    images: int
    image_id: int
    path: str
    score: float
    current: bool
    ids: list[int] = field(default_factory=list)


@dataclass
class Timeline:
    patient_key: str
    studies: list[TimelineStudy]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_target(store: Store, target: str | int) -> tuple[str, str, np.ndarray]:
    """(patient key, the target's study UID, its (dim,) vector: the image's own, or the unit's mean) of
    an image id, or a series or study UID. Raises NotFound, InvalidQuery (no patient key)."""
    text = str(target).strip()
    if text.isdigit():
        exists, patient = units.patient_of_image(store, int(text))
        if not exists:
            raise NotFound(f"No image with id {text} in the store.")
        row = units.unit_of_image(store, "study", int(text))
        vector = queries.vector_of_id(store, int(text))
        if patient is None or row is None or vector is None:
            raise InvalidQuery(f"image {text} has no patient (not a DICOM with a PatientID and study UID)")
        return patient, row.uid, vector
    for kind in ("series", "study"):
        row = units.unit_by_uid(store, kind, text)
        if row is not None and row.embedding is not None:
            if row.patient_key is None:
                raise InvalidQuery(f"{kind} {text} has no patient (its files carry no PatientID)")
            return row.patient_key, row.study_instance_uid or text, vector_codec.decode(row.embedding)
    raise NotFound(f"No image id, series or study {text!r} in the store.")


def timeline(store: Store, target: str | int, query: np.ndarray | None = None) -> Timeline:
    """The studies of ``target``'s patient in date order, each with its best image for ``query`` (a
    (dim,) unit vector; default the target's own vector). Raises NotFound, InvalidQuery."""
    patient, current, own = resolve_target(store, target)
    query = own if query is None else query
    studies = units.studies_of_patient(store, patient)
    members = units.members(store, "study", [row.uid for row, _n in studies])
    picked = {uid: max(m, key=lambda pair: float(pair[1] @ query)) for uid, m in members.items() if m}
    paths = queries.paths_by_id(store, [image_id for image_id, _v in picked.values()])
    out = []
    for row, series in studies:
        if row.uid not in picked:
            continue
        image_id, vector = picked[row.uid]
        out.append(TimelineStudy(row.uid, row.study_date.isoformat() if row.study_date else None, row.modality,
                                 row.description, series, row.size, image_id, paths.get(image_id, ""),
                                 float(vector @ query), row.uid == current, [i for i, _v in members[row.uid]]))
    return Timeline(patient, out)
