"""Research cohorts through the Python API: create, refresh, show, list, diff and delete.

    from search.api import Medsearch
    from search import cohorts

    with Medsearch.open("./store", writable=True) as ms:
        made = cohorts.create(ms, "effusions", include=["text:pleural effusion>=0.6"],
                              exclude=["text:chest tube>=0.5"], where=["modality in ('CR','DX')"],
                              one_per="patient")
        print(made["funnel"], made["members"][:3])

Criteria syntax and evaluation order: ``search.cohort_criteria``. Each create or refresh stores a run: its
manifest (definition as given, resolved thresholds, model id and revision, preprocessing version, store
generation, UTC date, funnel, collapsed near-duplicates) and its members with scores.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from search.cohort_criteria import SCORE_RULE, evaluate
from storage.cohort_models import Cohort, CohortMember, CohortRun
from storage.errors import InvalidQuery, NotFound
from storage.models import Image


def create(ms: Any, name: str, include: Sequence[str] = (), exclude: Sequence[str] = (), where: Sequence[str] = (),
           one_per: str | None = None, near_duplicates: float | None = None) -> dict[str, Any]:
    """Evaluate and save a new cohort; returns its manifest with ``members``. Raises InvalidQuery (bad
    criteria, name taken), NotFound (an example image), ModelMismatch."""
    if not name.strip():
        raise InvalidQuery("a cohort needs a name")
    if not include and not where:
        raise InvalidQuery("a cohort needs at least one --include or --where criterion")
    definition = {"include": list(include), "exclude": list(exclude), "where": list(where),
                  "one_per": one_per, "near_duplicates": near_duplicates}
    with ms.store.session() as session:
        if session.scalar(select(Cohort.id).where(Cohort.name == name)) is not None:
            raise InvalidQuery(f"a cohort named {name!r} exists; refresh it or delete it first")
    manifest = _evaluate(ms, name, definition)
    with ms.store.session() as session:
        cohort = Cohort(name=name, definition=json.dumps(definition))
        session.add(cohort)
        session.flush()
        return _save_run(session, cohort.id, 1, manifest)


def refresh(ms: Any, name: str) -> dict[str, Any]:
    """Re-run a saved definition on the store as it is now; stores and returns a new run."""
    with ms.store.sessions() as session:
        cohort = _cohort(session, name)
    manifest = _evaluate(ms, name, json.loads(cohort.definition))
    with ms.store.session() as session:
        number = (session.scalar(select(func.max(CohortRun.number)).where(CohortRun.cohort_id == cohort.id)) or 0) + 1
        return _save_run(session, cohort.id, number, manifest)


def show(ms: Any, name: str, run: int | None = None) -> dict[str, Any]:
    """The manifest of the latest run (or run number ``run``) with its members, best first."""
    with ms.store.sessions() as session:
        found = _run(session, _cohort(session, name), run)
        if found is None:
            raise NotFound(f"cohort {name!r} has no run {run}")
        return {**json.loads(found.manifest), "members": _members(session, found.id)}


def list_cohorts(ms: Any) -> list[dict[str, Any]]:
    """Every cohort: name, created date, number of runs, and the latest run's size and generation."""
    out = []
    with ms.store.sessions() as session:
        for cohort in session.scalars(select(Cohort).order_by(Cohort.name)):
            latest = _run(session, cohort, None)
            manifest = json.loads(latest.manifest) if latest else {}
            out.append({"name": cohort.name, "created_at": _iso(cohort.created_at),
                        "runs": latest.number if latest else 0, "count": manifest.get("count"),
                        "generation": manifest.get("store", {}).get("generation")})
    return out


def delete(ms: Any, name: str) -> None:
    """Delete a cohort with its runs and members. Raises NotFound."""
    with ms.store.session() as session:
        session.delete(_cohort(session, name))


def diff(ms: Any, name: str) -> dict[str, Any]:
    """Who joined and who left between the previous run and the latest: {run, previous_run, joined, left}."""
    with ms.store.sessions() as session:
        cohort = _cohort(session, name)
        latest = _run(session, cohort, None)
        assert latest is not None
        previous = _run(session, cohort, latest.number - 1) if latest.number > 1 else None
        now = {m["id"]: m for m in _members(session, latest.id)}
        before = {m["id"]: m for m in _members(session, previous.id)} if previous else {}
    return {"name": name, "run": latest.number, "previous_run": previous.number if previous else None,
            "joined": [now[i] for i in now if i not in before],
            "left": [before[i] for i in before if i not in now]}


def _evaluate(ms: Any, name: str, definition: dict[str, Any]) -> dict[str, Any]:
    outcome = evaluate(ms, definition["include"], definition["exclude"], definition["where"],
                       definition["one_per"], definition["near_duplicates"])
    info = ms.store.info()
    paths = _paths(ms, [m[0] for m in outcome.members])
    return {
        "name": name,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "definition": definition,
        "criteria": outcome.criteria,
        "score_rule": SCORE_RULE,
        "model": {"id": info.model_id, "revision": info.model_revision,
                  "preprocessing_version": info.preprocessing_version, "dimension": info.dim,
                  "image_precisions": ms.store.precisions()},
        "store": {"directory": str(ms.store.directory), "generation": info.generation},
        "funnel": outcome.funnel,
        "collapsed": outcome.collapsed,
        "count": len(outcome.members),
        "members": [{"rank": rank, "id": i, "path": paths[i], "score": s, "probability": p}
                    for rank, (i, s, p) in enumerate(outcome.members, start=1)],
    }


def _save_run(session: Session, cohort_id: int, number: int, manifest: dict[str, Any]) -> dict[str, Any]:
    manifest = {**manifest, "run": number}
    members = manifest.pop("members")
    run = CohortRun(cohort_id=cohort_id, number=number, manifest=json.dumps(manifest))
    session.add(run)
    session.flush()
    session.add_all(CohortMember(run_id=run.id, image_id=m["id"], rank=m["rank"], path=m["path"], score=m["score"],
                                 probability=m["probability"]) for m in members)
    return {**manifest, "members": members}


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


def _paths(ms: Any, ids: list[int]) -> dict[int, str]:
    with ms.store.sessions() as session:
        rows = session.execute(select(Image.id, Image.path).where(Image.id.in_(ids)))
        return {i: path for i, path in rows}


def _iso(value: dt.datetime) -> str:
    return value.replace(tzinfo=dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
