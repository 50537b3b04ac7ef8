"""One image's metadata and its thumbnail. Only ids come from the client; paths never do."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from medsearch.server.deps import get_engine
from medsearch.server.engine import ServerEngine
from medsearch.server.routes_search import ImageId
from medsearch.server.security import check_token
from medsearch.server.thumbnails import MAX_SIZE, MIN_SIZE

router = APIRouter(prefix="/api/items", tags=["items"], dependencies=[Depends(check_token)])


@router.get("/{image_id}")
def item(image_id: ImageId, engine: ServerEngine = Depends(get_engine)) -> dict[str, Any]:
    """The image's id, path and typed metadata (modality, body part, dates...; never identity)."""
    return engine.pictures.item(image_id)


@router.get("/{image_id}/thumbnail", response_class=Response,
            responses={200: {"content": {"image/png": {}}}})
def thumbnail(image_id: ImageId, size: Annotated[int, Query(ge=MIN_SIZE, le=MAX_SIZE)] = 256,
              engine: ServerEngine = Depends(get_engine)) -> Response:
    """A PNG of the image after the medical pixel pipeline (windowed, MONOCHROME1 inverted), at most
    ``size`` pixels on a side. 403 when the stored file lies outside the indexed folders."""
    png = engine.pictures.thumbnail(image_id, size)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})
