"""The page's viewer over HTTP: ``GET /api/view/{id}`` (the series' slices in order with their scores for
``q`` or for image ``similar``, presets, UIDs, the "open in viewer" link, the default label set) and
``GET /api/view/{id}/picture`` (a PNG rendered from the stored file at full bit depth at a window and
size). Only ids come from the client; files are read through ``served_path`` by a capped worker
(``medsearch.viewer.service``)."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Query, Request, Response
from medsearch.errors import InvalidQuery
from medsearch.indexer.windows import parse_window
from medsearch.server.deps import get_engine
from medsearch.server.engine import ServerEngine
from medsearch.server.limits import SERVER_MAX_PIXELS
from medsearch.server.routes_search import ImageId
from medsearch.server.security import check_token, served_path
from medsearch.viewer.pixels import MAX_VIEW_SIZE, check_window
from medsearch.viewer.service import Viewer

router = APIRouter(prefix="/api/view", tags=["viewer"], dependencies=[Depends(check_token)])
Number = Annotated[float | None, Query(ge=-1e7, le=1e7)]


def open_viewer(engine: ServerEngine) -> Viewer:
    """A Viewer over the engine's store, reading files only through ``served_path``. The app's lifespan
    opens it with the engine and closes it after; loading the page starts its worker."""
    store = engine.medsearch.store
    return Viewer(store, lambda stored: served_path(store, stored), SERVER_MAX_PIXELS)


def get_viewer(request: Request, engine: ServerEngine = Depends(get_engine)) -> Viewer:
    """The Viewer the lifespan opened. Raises StoreError while the app is not started (``get_engine``)."""
    viewer: Viewer = request.app.state.viewer
    return viewer


@router.get("/{image_id}")
def view_info(
    image_id: ImageId,
    q: Annotated[str | None, Query(max_length=2000, description="Score each slice for this text.")] = None,
    similar: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="...or for this image id.")] = None,
    engine: ServerEngine = Depends(get_engine), viewer: Viewer = Depends(get_viewer),
) -> dict[str, Any]:
    """The image's slices (its series in InstanceNumber / position order, each with its cosine to the query:
    ``q``, else image ``similar``, else null), ``index`` of the image among them, ``presets`` (CT windows in
    HU), ``uids``, ``has_patient``, ``label_set``, ``viewer_url``. 404 for an unknown id."""
    item = engine.pictures.item(image_id)
    info = viewer.info(image_id, item["metadata"], _query(engine, q, similar))
    return {**info, "viewer_url": item["viewer_url"], "modality": item["metadata"].get("modality")}


def _query(engine: ServerEngine, text: str | None, similar: int | None) -> np.ndarray | None:
    """The vector each slice is scored against: the text's (as a search composes it), or a stored image's."""
    if text and text.strip():
        return np.asarray(engine.medsearch.composed(text), dtype=np.float32)
    return engine.medsearch.query_vector(similar) if similar is not None else None


@router.get("/{image_id}/picture", response_class=Response, responses={200: {"content": {"image/png": {}}}})
def picture(
    image_id: ImageId,
    size: Annotated[int, Query(ge=16, le=MAX_VIEW_SIZE, description="Pixels on the longer side at most.")] = 1024,
    center: Number = None, width: Number = None,
    preset: Annotated[str | None, Query(max_length=32, description="A named CT window (lung, bone...).")] = None,
    viewer: Viewer = Depends(get_viewer),
) -> Response:
    """A PNG of the image rendered from its file at full bit depth: greyscale at the window ``center`` /
    ``width`` (modality units: HU for CT) or ``preset``, else its own (``X-Window-Center`` and
    ``X-Window-Width`` say which was used); colour as it is. 400 for a bad window, 403 outside the
    indexed folders, 404 for an unknown id or a DICOMweb item, 415 for an unreadable file."""
    window = _window(center, width, preset)
    png, used = viewer.picture(image_id, size, window)
    headers = {"Cache-Control": "private, max-age=3600"}
    if used is not None:
        headers.update({"X-Window-Center": f"{used[0]:g}", "X-Window-Width": f"{used[1]:g}"})
    return Response(png, media_type="image/png", headers=headers)


def _window(center: float | None, width: float | None, preset: str | None) -> tuple[float, float] | None:
    if preset:
        return parse_window(preset)
    if center is None and width is None:
        return None
    if center is None or width is None:
        raise InvalidQuery("a window needs both center and width")
    return check_window(center, width)
