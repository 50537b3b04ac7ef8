"""The cohort tables' reads and writes, as functions of a ``Store`` taking and giving plain dicts; each
write is one transaction. The cohort logic (criteria, manifests, diffs) is ``medsearch.cohorts``'."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from medsearch.errors import InvalidQuery, NotFound
from medsearch.storage.cohort_models import Cohort, CohortMember, CohortRun, CohortUnit
from medsearch.storage.store import Store
from sqlalchemy import func, select
from sqlalchemy.orm import Session


def check_name_free(store: Store, name: str) -> None:
    """Raises InvalidQuery when a cohort named ``name`` exists."""
    with store.read_session() as session:
        _check_free(session, name)


def definition(store: Store, name: str) -> dict[str, Any]:
    """The cohort's definition as given. Raises NotFound."""
    with store.read_session() as session:
        return dict(json.loads(_cohort(session, name).definition))


def add_run(store: Store, name: str, manifest: dict[str, Any], definition: dict[str, Any] | None = None,
            ) -> dict[str, Any]:
    """Save ``manifest`` (with its ``members``) as the cohort's next run, creating the cohort with
    ``definition`` when that is given; returns the manifest with its ``run`` number. Raises NotFound (an
    existing cohort asked for and gone), InvalidQuery (a new cohort whose name is taken)."""
    with store.write_session() as session:
        if definition is not None:
            _check_free(session, name)
            cohort = Cohort(name=name, definition=json.dumps(definition))
            session.add(cohort)
            session.flush()
            number = 1
        else:
            cohort = _cohort(session, name)
            latest = session.scalar(select(func.max(CohortRun.number)).where(CohortRun.cohort_id == cohort.id))
            number = (latest or 0) + 1
        return _save_run(session, cohort.id, number, manifest)


def run(store: Store, name: str, number: int | None = None) -> dict[str, Any] | None:
    """The manifest of the latest run (or run ``number``) with its ``members``, best first; None when
    there is no such run. Raises NotFound for an unknown cohort."""
    with store.read_session() as session:
        found = _run(session, _cohort(session, name), number)
        if found is None:
            return None
        manifest = json.loads(found.manifest)
        if manifest.get("unit", "image") != "image":
            return {**manifest, "members": _unit_members(session, found.id)}
        return {**manifest, "members": _members(session, found.id)}


def summaries(store: Store) -> list[dict[str, Any]]:
    """Every cohort: name, created date, number of runs, and the latest run's size, unit and generation."""
    out = []
    with store.read_session() as session:
        for cohort in session.scalars(select(Cohort).order_by(Cohort.name)):
            latest = _run(session, cohort, None)
            manifest = json.loads(latest.manifest) if latest else {}
            out.append({"name": cohort.name, "created_at": _iso(cohort.created_at),
                        "runs": latest.number if latest else 0, "count": manifest.get("count"),
                        "unit": manifest.get("unit", "image"),
                        "generation": manifest.get("store", {}).get("generation")})
    return out


def delete(store: Store, name: str) -> None:
    """Delete a cohort with its runs and members. Raises NotFound."""
    with store.write_session() as session:
        session.delete(_cohort(session, name))


def _save_run(session: Session, cohort_id: int, number: int, manifest: dict[str, Any]) -> dict[str, Any]:
    manifest = {**manifest, "run": number}
    members = manifest.pop("members")
    run = CohortRun(cohort_id=cohort_id, number=number, manifest=json.dumps(manifest))
    session.add(run)
    session.flush()
    if manifest.get("unit", "image") != "image":
        _save_units(session, run.id, manifest["unit"], members)
    else:
        session.add_all(CohortMember(run_id=run.id, image_id=m["id"], rank=m["rank"], path=m["path"],
                                     score=m["score"], probability=m["probability"]) for m in members)
    return {**manifest, "members": members}


UNIT_SUMMARY = ("size", "image_id", "score", "probability", "study_instance_uid", "modality", "study_date",
                "description")
"""The fields of a unit member (``medsearch.cohorts.units``) kept in ``cohort_units``, beside rank and key."""


def _save_units(session: Session, run_id: int, kind: str, members: list[dict[str, Any]]) -> None:
    """A series/study run: one ``cohort_units`` row per unit and a member row per image of it (``paths``:
    image id -> path; ``matched``: the ids that passed the criteria)."""
    for m in members:
        session.add(CohortUnit(run_id=run_id, rank=m["rank"], kind=kind, uid=m["key"],
                               **{name: m[name] for name in UNIT_SUMMARY}))
        matched = set(m["matched"])
        session.add_all(CohortMember(run_id=run_id, image_id=image_id, rank=m["rank"], path=m["paths"][image_id],
                                     unit_uid=m["key"], matched=image_id in matched) for image_id in m["ids"])


def _check_free(session: Session, name: str) -> None:
    if session.scalar(select(Cohort.id).where(Cohort.name == name)) is not None:
        raise InvalidQuery(f"a cohort named {name!r} exists; refresh it or delete it first")


def _cohort(session: Session, name: str) -> Cohort:
    cohort = session.scalar(select(Cohort).where(Cohort.name == name))
    if cohort is None:
        raise NotFound(f"no cohort named {name!r}; `medsearch cohort list` shows them")
    return cohort


def _run(session: Session, cohort: Cohort, number: int | None) -> CohortRun | None:
    query = select(CohortRun).where(CohortRun.cohort_id == cohort.id)
    query = query.order_by(CohortRun.number.desc()) if number is None else query.where(CohortRun.number == number)
    return session.scalars(query.limit(1)).first()


def _members(session: Session, run_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(select(CohortMember).where(CohortMember.run_id == run_id).order_by(CohortMember.rank))
    return [{"rank": m.rank, "id": m.image_id, "path": m.path, "score": m.score, "probability": m.probability}
            for m in rows]


def _unit_members(session: Session, run_id: int) -> list[dict[str, Any]]:
    """A series/study run's units, best first, each with its image ids, the matched ones and their paths."""
    images: dict[str, list[CohortMember]] = {}
    for m in session.scalars(select(CohortMember).where(CohortMember.run_id == run_id).order_by(CohortMember.image_id)):
        images.setdefault(m.unit_uid or "", []).append(m)
    out = []
    for row in session.scalars(select(CohortUnit).where(CohortUnit.run_id == run_id).order_by(CohortUnit.rank)):
        rows = images.get(row.uid, [])
        out.append({"rank": row.rank, "unit": row.kind, "key": row.uid, **{n: getattr(row, n) for n in UNIT_SUMMARY},
                    "path": next((m.path for m in rows if m.image_id == row.image_id), ""),
                    "ids": [m.image_id for m in rows], "matched": [m.image_id for m in rows if m.matched],
                    "paths": {m.image_id: m.path for m in rows}})
    return out


def _iso(value: dt.datetime) -> str:
    return value.replace(tzinfo=dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
