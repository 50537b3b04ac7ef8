"""What the web page needs beyond search: the filter lists with counts (``/api/facets``) and the model's
input of a stored image (``/api/items/{id}/model-input``). Only ids and filter text come from the client;
a file is read only through ``served_path``, by a capped decoding worker."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from medsearch.server.deps import get_engine
from medsearch.server.engine import ServerEngine
from medsearch.server.routes_search import ImageId
from medsearch.server.security import check_token
from starlette.concurrency import run_in_threadpool

router = APIRouter(prefix="/api", tags=["page"], dependencies=[Depends(check_token)])


@router.get("/facets")
def facets(where: Annotated[str | None, Query(max_length=4000, description="A filter expression.")] = None,
            engine: ServerEngine = Depends(get_engine)) -> dict[str, Any]:
    """Per column with few values (modality, body part, view position, sex, manufacturer, sidecar and
    label fields): each value and how many images matching ``where`` have it (``columns``), the count of
    those images (``images``) and the names of the store's splits (``splits``). 400 for a bad filter."""
    return engine.medsearch.facets([where] if where else [])


@router.get("/items/{image_id}/model-input", response_class=Response,
            responses={200: {"content": {"image/png": {}}}})
async def model_input(image_id: ImageId, engine: ServerEngine = Depends(get_engine)) -> Response:
    """A PNG of exactly what the model was given for the image: the padded square after the VOI, at the
    model's size (16-bit grey, or 8-bit RGB for colour). 403 outside the indexed folders; 404 for a
    DICOMweb item (its file is not kept)."""
    return Response(await run_in_threadpool(engine.pictures.model_input, image_id), media_type="image/png",
                    headers={"Cache-Control": "private, max-age=3600"})
