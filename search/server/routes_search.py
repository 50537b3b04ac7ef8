"""Text and composed search (with filters, grouping and counting) and similar cases (by stored id, or by
an uploaded DICOM or raster image)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from medsearch.errors import InvalidQuery
from medsearch.language.present import fields
from medsearch.server.deps import ServerSettings, get_engine, get_settings
from medsearch.server.engine import ServerEngine
from medsearch.server.security import check_token
from medsearch.server.upload import read_upload
from starlette.concurrency import run_in_threadpool

router = APIRouter(prefix="/api", tags=["search"], dependencies=[Depends(check_token)])

K = Annotated[int, Query(ge=1, le=1000, description="How many results.")]
Offset = Annotated[int, Query(ge=0, le=100_000, description="Skip this many results (paging).")]
ImageId = Annotated[int, Path(ge=1, le=2**63 - 1, description="An image id from the store.")]
Where = Annotated[str | None, Query(max_length=4000, description="A filter expression.")]
MinScore = Annotated[float | None, Query(ge=-1, le=1, description="Lowest cosine kept.")]
GroupBy = Annotated[str | None, Query(max_length=200, description=(
    "One result per group: study, series, patient or a metadata column / field; results carry `group`."))]
Parts = Annotated[list[str] | None, Query(max_length=20, description=(
    "Composed query parts (repeatable): a text or id:N, optionally @WEIGHT."))]
Unit = Annotated[str, Query(max_length=16, description="image, or one result per series or study.")]
UnitMethod = Annotated[str | None, Query(max_length=16, description="max, top3, mean (text); late (similar).")]
Sort = Annotated[str, Query(max_length=16, description="score, or date (newest first; needs a threshold).")]


def _page(query: str, k: int, offset: int, results: list[Any]) -> dict[str, Any]:
    return {"query": query, "k": k, "offset": offset, "results": [r.as_dict() for r in results]}


def _given(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value not in (None, [])}


@router.get("/search")
def search(
    q: Annotated[str | None, Query(max_length=2000, description="What to look for.")] = None,
    k: K = 20,
    offset: Offset = 0,
    where: Where = None,
    min_score: MinScore = None,
    min_prob: Annotated[float | None, Query(ge=0, le=1, description="Lowest probability kept.")] = None,
    group_by: GroupBy = None,
    like: Parts = None,
    unlike: Parts = None,
    count: Annotated[bool, Query(description="Answer only {\"count\": N}: how many images pass.")] = False,
    unit: Unit = "image",
    unit_method: UnitMethod = None,
    sort: Sort = "score",
    engine: ServerEngine = Depends(get_engine),
) -> dict[str, Any]:
    """Images that match the text (and the ``like`` parts, away from the ``unlike`` ones), best first, with
    cosine ``score`` and, for a plain text, the model's ``probability``. The filters are accepted when
    ``/api/info`` lists them in ``server.filters`` (400 otherwise). ``count=true``: just the number
    (and ``searched_as`` when the text was translated)."""
    filters = _given(where=where, min_score=min_score, min_prob=min_prob, group_by=group_by, like=like,
                     unlike=unlike)
    translation = engine.medsearch.searched_as(q) if q else None
    if count and unit != "image":
        return {"count": engine.count(q, filters, unit), **fields(translation, only_changed=True)}
    if count:
        return {"count": engine.count(q, filters), **fields(translation, only_changed=True)}
    if unit != "image" or sort != "score":
        found = engine.search_units(q, unit, k, offset, {**filters, **_given(unit_method=unit_method), "sort": sort}) \
            if unit != "image" else engine.search(q, k, offset, {**filters, "sort": sort})
        return {**_page(q or "", k, offset, found), "unit": unit, **fields(translation)}
    return {**_page(q or "", k, offset, engine.search(q, k, offset, filters)), **fields(translation)}


@router.get("/similar/{image_id}")
def similar_to_id(image_id: ImageId, k: K = 20, offset: Offset = 0, where: Where = None,
                  min_score: MinScore = None, group_by: GroupBy = None,
                  include_self: Annotated[bool, Query(description="Keep the image itself (first).")] = False,
                  unit: Unit = "image", unit_method: UnitMethod = None, sort: Sort = "score",
                  engine: ServerEngine = Depends(get_engine)) -> dict[str, Any]:
    """Images closest to a stored image (left out; ``include_self=true`` keeps it, first), as ``Medsearch.similar``,
    optionally filtered, thresholded and grouped like ``/api/search``; ``unit=series|study``: the units
    closest to the image's own (left out)."""
    filters = _given(where=where, min_score=min_score, group_by=group_by)
    if unit != "image":
        found = engine.similar_units(image_id, unit, k, offset, {**filters, **_given(unit_method=unit_method),
                                                                   "sort": sort})
        return {**_page(str(image_id), k, offset, found), "unit": unit}
    filters.update(_given(include_self=include_self))
    if sort != "score":
        filters["sort"] = sort
    return _page(str(image_id), k, offset, engine.similar_to_id(image_id, k, offset, filters))


UPLOAD_FIELDS = {"where": "the filter expression", "min_score": "the lowest cosine kept",
                 "group_by": "one result per group", "k": "how many results", "offset": "results skipped",
                 "unit": "image, or one result per series or study", "unit_method": "late, mean, max or top3",
                 "sort": "score, or date (needs min_score)"}
"""Multipart form fields ``POST /api/similar`` takes beside ``file`` (the same as the query parameters)."""


@router.post("/similar", openapi_extra={"requestBody": {"content": {
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "file": {"type": "string", "format": "binary"},
        **{name: {"type": "string", "description": text} for name, text in UPLOAD_FIELDS.items()}}}},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
async def similar_to_upload(request: Request, k: K = 20, offset: Offset = 0, where: Where = None,
                            min_score: MinScore = None, group_by: GroupBy = None, unit: Unit = "image",
                            unit_method: UnitMethod = None, sort: Sort = "score",
                            engine: ServerEngine = Depends(get_engine),
                            settings: ServerSettings = Depends(get_settings)) -> dict[str, Any]:
    """Images closest to an uploaded image: a form with a ``file`` field, or the image as the body.
    DICOM, PNG, JPEG, TIFF or BMP; decoded in memory, never stored. 413 past the upload limit. ``where``,
    ``min_score``, ``group_by``, ``k``, ``offset``, ``sort`` and ``unit`` (series/study: the units closest
    to the image, ``unit_method`` as for ``/api/similar/{id}``) as for the other searches, as query
    parameters or as form fields (a form field wins)."""
    upload = await read_upload(request, settings.upload_limit)
    form = upload_form(upload.fields, {"k": k, "offset": offset, "where": where, "min_score": min_score,
                                       "group_by": group_by, "unit": unit, "unit_method": unit_method,
                                       "sort": sort})
    k, offset = form.pop("k"), form.pop("offset")
    results = await run_in_threadpool(engine.similar_to_bytes, upload.data, upload.filename, k, offset,
                                      _given(**form))
    page, chosen = _page(upload.filename, k, offset, results), form.get("unit") or "image"
    return {**page, "unit": chosen} if chosen != "image" else page


def upload_form(fields: dict[str, list[str]], given: dict[str, Any]) -> dict[str, Any]:
    """The search fields of an upload form over the query's ``given`` ones, checked as the query
    parameters are. Raises InvalidQuery for an unknown field or a bad value."""
    unknown = sorted(set(fields) - set(UPLOAD_FIELDS))
    if unknown:
        raise InvalidQuery(f"Unknown form field(s): {', '.join(unknown)}; known: file, {', '.join(UPLOAD_FIELDS)}.")
    values = dict(given)
    for name, texts in fields.items():
        if len(texts) != 1:
            raise InvalidQuery(f"The form field {name!r} is given {len(texts)} times; give it once.")
        values[name] = _form_value(name, texts[0])
    return values


def _form_value(name: str, text: str) -> Any:
    limits = {"k": (1, 1000), "offset": (0, 100_000), "min_score": (-1.0, 1.0)}
    if name not in limits:
        return text or None
    try:
        value = float(text) if name == "min_score" else int(text)
    except ValueError:
        raise InvalidQuery(f"The form field {name!r} must be a number, not {text!r}.") from None
    low, high = limits[name]
    if not low <= value <= high:
        raise InvalidQuery(f"The form field {name!r} must be between {low} and {high}, not {text}.")
    return value
