"""Text and composed search (with filters, grouping and counting) and similar cases (by stored id, or by
an uploaded DICOM or raster image). Each route reads its ``QuerySpec`` from the request
(``medsearch.server.query_params``) and makes one service call."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from medsearch.language.present import fields
from medsearch.query.spec import OPTIONS, QuerySpec
from medsearch.server.admission import admit
from medsearch.server.deps import ServerSettings, get_engine, get_settings
from medsearch.server.engine import ServerEngine
from medsearch.server.query_params import flag, openapi_parameters, spec_of
from medsearch.server.security import check_token
from medsearch.server.upload import read_upload

router = APIRouter(prefix="/api", tags=["search"], dependencies=[Depends(check_token)])

ImageId = Annotated[int, Path(ge=1, le=2**63 - 1, description="An image id from the store.")]
COUNT = {"name": "count", "in": "query", "required": False, "schema": {"type": "boolean"},
         "description": "Answer only {\"count\": N}: how many images (or units) pass."}


def _page(query: str, spec: QuerySpec, results: list[Any]) -> dict[str, Any]:
    page = {"query": query, "k": spec.k, "offset": spec.offset, "results": [r.as_dict() for r in results]}
    return {**page, "unit": spec.unit} if spec.is_unit else page


@router.get("/search", openapi_extra={"parameters": [*openapi_parameters("search"), COUNT]})
def search(request: Request, engine: ServerEngine = Depends(get_engine)) -> dict[str, Any]:
    """Images (or series / studies, ``unit``) that match the text ``q`` and the ``like`` parts, away from the
    ``unlike`` ones, best first, with cosine ``score`` and, for a plain text, the model's ``probability``.
    ``count=true``: just the number (and ``searched_as`` when the text was translated)."""
    spec = spec_of(request.query_params, "search", ignore=("count",))
    count = flag(request.query_params, "count")
    queries = engine.medsearch.queries
    translation = queries.searched_as(spec.text) if spec.text else None
    if count:
        return {"count": queries.count(spec), **fields(translation, only_changed=True)}
    return {**_page(spec.text or "", spec, queries.run(spec)), **fields(translation)}


@router.get("/similar/{image_id}", openapi_extra={"parameters": openapi_parameters("similar")})
def similar_to_id(image_id: ImageId, request: Request, engine: ServerEngine = Depends(get_engine)) -> dict[str, Any]:
    """Images closest to a stored image (left out; ``include_self=true`` keeps it, first), filtered,
    thresholded and grouped like ``/api/search``; ``unit=series|study``: the units closest to the image's
    own (left out)."""
    spec = spec_of(request.query_params, "similar", target=str(image_id))
    return _page(str(image_id), spec, engine.medsearch.queries.run(spec))


UPLOAD_FIELDS = {option.name: option.help for option in OPTIONS
                 if "similar" in option.kinds and option.name not in ("target", "include_self")}
"""Multipart form fields ``POST /api/similar`` takes beside ``file`` (the same as the query parameters)."""


@router.post("/similar", dependencies=[Depends(admit("upload"))], openapi_extra={
    "parameters": openapi_parameters("similar", skip=("include_self",)),
    "requestBody": {"content": {
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "file": {"type": "string", "format": "binary"},
            **{name: {"type": "string", "description": text} for name, text in UPLOAD_FIELDS.items()}}}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
async def similar_to_upload(request: Request, engine: ServerEngine = Depends(get_engine),
                            settings: ServerSettings = Depends(get_settings)) -> dict[str, Any]:
    """Images (or units) closest to an uploaded image: a form with a ``file`` field, or the image as the
    body. DICOM, PNG, JPEG, TIFF or BMP; decoded in memory, never stored. 413 past the upload limit. The
    search options as query parameters or as form fields (a form field wins)."""
    upload = await read_upload(request, settings.upload_limit)
    values = {name: request.query_params.getlist(name) for name in request.query_params}
    spec = spec_of({**values, **upload.fields}, "similar", target=upload.filename or "upload")
    results = await engine.model_threads.run(engine.pictures.similar_to_upload, upload.data, upload.filename, spec)
    return _page(upload.filename, spec, results)
