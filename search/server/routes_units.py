"""A patient's timeline over HTTP: ``GET /api/timeline?id=`` (an image id, or a series or study UID)
gives that patient's studies oldest first, each with its best image for ``q`` (default: the target's own
vector). The patient is found by the keyed patient hash; no identity is ever returned. ``unit=`` on
``/api/search`` and ``/api/similar/{id}`` lives in ``routes_search``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from medsearch.server.deps import get_engine
from medsearch.server.engine import ServerEngine
from medsearch.server.security import check_token

router = APIRouter(prefix="/api", tags=["units"], dependencies=[Depends(check_token)])


@router.get("/timeline")
def timeline(
    id: Annotated[str, Query(min_length=1, max_length=128, description="An image id, or a series or study UID.")],
    q: Annotated[str | None, Query(max_length=2000, description="Pick each study's best image for this.")] = None,
    engine: ServerEngine = Depends(get_engine),
) -> dict[str, Any]:
    """``{"patient_key", "studies": [{study_instance_uid, study_date, modality, description, series, images,
    image_id, path, score, current, ids}]}``, oldest study first (undated last). 404 for an unknown
    target, 400 for an image without a patient."""
    return dict(engine.medsearch.timeline(id, q).as_dict())
