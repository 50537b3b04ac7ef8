"""Cohorts of series or studies (``unit="series"|"study"``): the criteria are evaluated on images as
always, then the members become the units holding at least one passing image, best first.

A unit member's ``score`` (and ``probability``) is its best passing image's, which is also its
representative (``image_id``, ``path``); ``size`` is the unit's whole size, ``ids`` all its images (the
unit is the member: a series export lists every slice), ``matched`` the ids that passed, ``paths`` image
id -> path. Images without that UID (not DICOM, or no series/study UID) cannot be in such a cohort; the
funnel's last step says how many images the units came from.

``--one-per series`` differs: the members stay images, the best one per series.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from medsearch.errors import InvalidQuery
from medsearch.query.spec import UNITS
from medsearch.storage import queries, units

if TYPE_CHECKING:
    from medsearch.context import Context

Member = tuple[int, float | None, float | None]
"""An image member as ``criteria.evaluate`` gives it: (id, score, probability)."""


def check_cohort_unit(unit: str) -> str:
    """``unit`` when it is image, series or study. Raises InvalidQuery."""
    if unit not in UNITS:
        raise InvalidQuery(f"unknown cohort unit {unit!r}; expected one of {', '.join(UNITS)}")
    return unit


def unit_members(ctx: Context, ordered: list[Member], kind: str) -> list[dict[str, Any]]:
    """The units of ``kind`` holding the image members ``ordered`` (best first), as member dicts ranked
    from 1 in the order of their best image (see the module). Units emptied meanwhile are dropped."""
    of_image = units.units_of_images(ctx.store, kind, [m[0] for m in ordered])
    best: dict[str, Member] = {}
    matched: dict[str, list[int]] = {}
    for member in ordered:
        if member[0] in of_image:
            uid = of_image[member[0]][0]
            best.setdefault(uid, member)
            matched.setdefault(uid, []).append(member[0])
    rows = {row.uid: row for row in units.units_by_id(ctx.store, [
        int(i) for i in units.unit_ids_of_uids(ctx.store, kind, set(best))]).values()}
    ids = units.member_ids(ctx.store, kind, list(best))
    paths = queries.paths_by_id(ctx.store, [i for uid in best for i in ids[uid]])
    out: list[dict[str, Any]] = []
    for uid, (image_id, score, probability) in best.items():
        if uid not in rows or not ids[uid]:
            continue
        row = rows[uid]
        out.append({"rank": len(out) + 1, "unit": kind, "key": uid, "score": score, "probability": probability,
                    "size": row.size, "image_id": image_id, "path": paths.get(image_id, ""),
                    "study_instance_uid": row.study_instance_uid, "modality": row.modality,
                    "study_date": row.study_date.isoformat() if row.study_date else None,
                    "description": row.description, "ids": ids[uid], "matched": sorted(matched[uid]),
                    "paths": {i: paths.get(i, "") for i in ids[uid]}})
    return out


def unit_step(kind: str, images: int, count: int) -> dict[str, Any]:
    """The funnel step from ``images`` image members to ``count`` units."""
    return {"step": f"as {kind}: the {kind} of these images", "count": count, "removed": images - count,
            "unit": kind}
