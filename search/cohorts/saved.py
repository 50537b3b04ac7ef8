"""Research cohorts through the Python API: create, refresh, show, list, diff and delete.

    from medsearch import Medsearch, cohorts

    with Medsearch.open("./store", writable=True) as ms:
        made = cohorts.create(ms.ctx, "effusions", include=["text:pleural effusion>=0.6"],
                              exclude=["text:chest tube>=0.5"], where=["modality in ('CR','DX')"],
                              one_per="patient")
        print(made["funnel"], made["members"][:3])

Criteria syntax and evaluation order: ``medsearch.cohorts.criteria``. Each create or refresh stores a run: its
manifest (definition as given, resolved thresholds, model id and revision, preprocessing version, store
generation, UTC date, funnel, collapsed near-duplicates) and its members with scores. A split made on a
cohort (``medsearch split NAME --cohort C``) is kept in its definition and its manifest (``splits``) and
re-made on each refresh.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from medsearch.cohorts import discordance
from medsearch.cohorts.criteria import SCORE_RULE, Outcome, evaluate
from medsearch.cohorts.units import check_cohort_unit, unit_members, unit_step
from medsearch.errors import InvalidQuery, NotFound, StoreError
from medsearch.storage import cohort_store, queries
from medsearch.storage.learn import load_split

if TYPE_CHECKING:
    from medsearch.context import Context
    from medsearch.labels.labelsets import LabelSet


def create(ctx: Context, name: str, include: Sequence[str] = (), exclude: Sequence[str] = (),
           where: Sequence[str] = (), one_per: str | None = None,
           near_duplicates: float | None = None, unit: str = "image") -> dict[str, Any]:
    """Evaluate and save a new cohort of images, or of the series or studies (``unit``) holding the
    passing images (``medsearch.cohorts.units``); returns its manifest with ``members``. Raises InvalidQuery
    (bad criteria, name taken, an unknown unit), NotFound (an example image), ModelMismatch."""
    if not name.strip():
        raise InvalidQuery("a cohort needs a name")
    if not include and not where:
        raise InvalidQuery("a cohort needs at least one --include or --where criterion")
    definition = {"include": list(include), "exclude": list(exclude), "where": list(where),
                  "one_per": one_per, "near_duplicates": near_duplicates, "unit": check_cohort_unit(unit)}
    cohort_store.check_name_free(ctx.store, name)
    return cohort_store.add_run(ctx.store, name, _evaluate(ctx, name, definition), definition)


def create_discordant(ctx: Context, name: str, labels: LabelSet, finding: str, direction: str = "both",
                      k: int | None = None, min_disagreement: float = 0.5, unit: str = "image") -> dict[str, Any]:
    """Evaluate and save a discordance cohort (``medsearch.cohorts.discordance``): the images or studies
    where the zero-shot score of ``finding`` and the report disagree, strongest first. Raises InvalidQuery
    (unknown finding/direction/unit, no reports, one report class only, name taken), ModelMismatch."""
    if not name.strip():
        raise InvalidQuery("a cohort needs a name")
    made = discordance.definition(labels, finding, direction, k, min_disagreement, unit)
    cohort_store.check_name_free(ctx.store, name)
    return discordance.with_details(cohort_store.add_run(ctx.store, name, _evaluate(ctx, name, made), made))


def refresh(ctx: Context, name: str) -> dict[str, Any]:
    """Re-run a saved definition on the store as it is now; stores and returns a new run (its splits
    re-made on it, see ``_remake_splits``). Raises NotFound, ModelMismatch (before any write)."""
    definition = cohort_store.definition(ctx.store, name)
    kept_splits = _kept_splits(ctx, definition)
    made = cohort_store.add_run(ctx.store, name, _evaluate(ctx, name, definition))
    return _remake_splits(ctx, name, kept_splits) if kept_splits else discordance.with_details(made)


def _kept_splits(ctx: Context, definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{field: how} of the splits ``medsearch split --cohort`` kept in a cohort's definition (field,
    ratios, names, stratification, seed, grouping). Raises ModelMismatch when one was made on a store
    of another model."""
    kept: dict[str, dict[str, Any]] = definition.get("splits", {})
    for field in kept:
        load_split(ctx.store, field)
    return kept


def _remake_splits(ctx: Context, name: str, kept: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Re-make the ``kept`` splits on the cohort's latest run, so its manifest carries them; returns
    that run as stored."""
    from medsearch.learn.split import split

    for field, how in kept.items():
        split(ctx, field, scope=(f"cohort:{name}",), **{"missing": "alone", **how})  # kept before --missing
    return show(ctx, name)


def show(ctx: Context, name: str, run: int | None = None) -> dict[str, Any]:
    """The manifest of the latest run (or run number ``run``) with its members, best first. Raises
    NotFound."""
    found = cohort_store.run(ctx.store, name, run)
    if found is None:
        raise NotFound(f"cohort {name!r} has no run {run}")
    return discordance.with_details(found)


def list_cohorts(ctx: Context) -> list[dict[str, Any]]:
    """Every cohort: name, created date, number of runs, and the latest run's size and generation."""
    return cohort_store.summaries(ctx.store)


def delete(ctx: Context, name: str) -> None:
    """Delete a cohort with its runs and members. Raises NotFound."""
    cohort_store.delete(ctx.store, name)


def diff(ctx: Context, name: str) -> dict[str, Any]:
    """Who joined and who left between the previous run and the latest: {run, previous_run, joined, left}."""
    latest = show(ctx, name)
    previous = cohort_store.run(ctx.store, name, latest["run"] - 1) if latest["run"] > 1 else None
    now = {_identity(m): m for m in latest["members"]}
    before = {_identity(m): m for m in previous["members"]} if previous else {}
    return {"name": name, "run": latest["run"], "previous_run": previous["run"] if previous else None,
            "joined": [now[i] for i in now if i not in before],
            "left": [before[i] for i in before if i not in now]}


def _evaluate(ctx: Context, name: str, definition: dict[str, Any]) -> dict[str, Any]:
    """A run's manifest: what was asked, the model and store it ran on, and its funnel and members."""
    if "discordant" in definition:
        return {**_header(ctx, name, definition),
                **discordance.evaluate(ctx, definition["discordant"], definition.get("unit") or "image")}
    outcome = evaluate(ctx, definition["include"], definition["exclude"], definition["where"],
                       definition["one_per"], definition["near_duplicates"])
    paths = queries.paths_by_id(ctx.store, [m[0] for m in outcome.members])
    return {
        **_header(ctx, name, definition),
        "criteria": outcome.criteria,
        "score_rule": SCORE_RULE,
        "funnel": outcome.funnel,
        "collapsed": outcome.collapsed,
        "count": len(outcome.members),
        "members": [{"rank": rank, "id": i, "path": paths[i], "score": s, "probability": p}
                    for rank, (i, s, p) in enumerate(outcome.members, start=1)],
        **_as_units(ctx, outcome, definition.get("unit") or "image"),
    }


def _header(ctx: Context, name: str, definition: dict[str, Any]) -> dict[str, Any]:
    """The manifest entries every run has: name, date, definition, model and store generation. Raises
    StoreError on an empty store."""
    info = ctx.store.info()
    if info is None:
        raise StoreError("the store is empty: index images first")
    return {
        "name": name,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "definition": definition,
        "model": {"id": info.model_id, "revision": info.model_revision,
                  "preprocessing_version": info.preprocessing_version, "dimension": info.dim,
                  "image_precisions": ctx.store.precisions()},
        "store": {"directory": str(ctx.store.directory), "generation": info.generation},
    }


def _as_units(ctx: Context, outcome: Outcome, unit: str) -> dict[str, Any]:
    """For a series/study cohort, the manifest entries that replace the image members: the units, their
    count and images, and the funnel with its last step; nothing for an image cohort."""
    if unit == "image":
        return {}
    members = unit_members(ctx, outcome.members, unit)
    funnel = [*outcome.funnel, unit_step(unit, len(outcome.members), len(members))]
    return {"unit": unit, "funnel": funnel, "count": len(members), "images": sum(m["size"] for m in members),
            "members": members}


def _identity(member: dict[str, Any]) -> Any:
    """What makes a member the same across runs: its image id, or its unit's UID."""
    return member.get("key", member.get("id"))
