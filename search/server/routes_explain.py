"""``GET /api/explain``: where a text (or composed) query lands in a stored image, as a PNG overlay on
the padded square the model saw or as the patch grid in JSON. A heuristic explanation of the score, not
a finding. Only ids come from the client; the file is read through ``served_path``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import JSONResponse
from medsearch.explain import DEFAULT_METHOD, METHODS, NOTE
from medsearch.server.admission import admit
from medsearch.server.deps import get_engine
from medsearch.server.engine import ServerEngine
from medsearch.server.security import check_token, served_path

router = APIRouter(prefix="/api", tags=["explain"], dependencies=[Depends(check_token), Depends(admit("explain"))])


@router.get("/explain", response_class=Response,
            responses={200: {"content": {"image/png": {}, "application/json": {}}}})
async def explain(
    id: Annotated[int, Query(ge=1, le=2**63 - 1, description="An image id from the store.")],
    text: Annotated[str | None, Query(max_length=2000, description="The query text.")] = None,
    like: Annotated[list[str] | None, Query(max_length=20, description="Composed positive parts.")] = None,
    unlike: Annotated[list[str] | None, Query(max_length=20, description="Composed negative parts.")] = None,
    method: Annotated[str, Query(max_length=20, description=f"One of {', '.join(METHODS)}.")] = DEFAULT_METHOD,
    format: Annotated[Literal["png", "json"], Query(description="png: the overlay; json: the grid.")] = "png",
    engine: ServerEngine = Depends(get_engine),
) -> Response:
    """The heatmap of ``text`` (and the ``like`` / ``unlike`` parts: the composed vector) over image ``id``.
    PNG: the padded image, the map, a colour bar; JSON: the grid (rows top to bottom) and its geometry.
    Both carry the label that this is a heuristic explanation, not a finding (``X-Explanation-Note``)."""
    store = engine.medsearch.store
    result = await engine.model_threads.run(engine.medsearch.explain, id, text, method, like=like or (),
                                            unlike=unlike or (), guard=lambda stored: served_path(store, stored))
    headers = {"X-Explanation-Note": NOTE, "Cache-Control": "private, no-store"}
    if format == "json":
        return JSONResponse(result.as_dict(id=id, query=text), headers=headers)
    return Response(await engine.model_threads.run(result.png), media_type="image/png", headers=headers)
