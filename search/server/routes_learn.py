"""Cohorts for machine learning over HTTP, for the page: train a probe from a list of ids (the basket)
and get "more like these", list the probes, and a split's counts. Probes live in their own table and are
written like cohorts: one SQLite transaction each, serialised by the learning service; only ids come from
the client."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from medsearch.server.deps import get_engine
from medsearch.server.engine import ServerEngine
from medsearch.server.security import check_token
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

router = APIRouter(prefix="/api", tags=["learn"], dependencies=[Depends(check_token)])

Ids = list[Annotated[int, Field(ge=1, le=2**63 - 1)]]


class ProbeRequest(BaseModel):
    """A probe from the basket: ``positives`` (ids), ``negatives`` (ids; default every other image), the
    zero-shot ``prompt`` to compare with (default the name), the cross-validation group and how many
    "more like these" to answer."""

    name: str = Field(min_length=1, max_length=128)
    positives: Ids = Field(min_length=2, max_length=1000)
    negatives: Ids | None = Field(default=None, max_length=10000)
    prompt: str | None = Field(default=None, max_length=500)
    group_by: str = Field(default="patient", max_length=200)
    k: int = Field(default=20, ge=1, le=200)


def _train(engine: ServerEngine, request: ProbeRequest) -> dict[str, Any]:
    prompt = request.prompt or request.name.replace("_", " ").replace("-", " ")
    negatives = [f"ids:{','.join(map(str, request.negatives))}"] if request.negatives else []
    report = engine.medsearch.learning.train_probe(
        request.name, [f"ids:{','.join(map(str, request.positives))}"], negatives, prompt=prompt,
        group_by=request.group_by, more_like_these=request.k,
        exclude=request.positives)
    report.pop("fold_ids")
    return report


@router.post("/probes", status_code=201)
async def train_probe(request: ProbeRequest, engine: ServerEngine = Depends(get_engine)) -> dict[str, Any]:
    """Train and save a probe on the basket: its cross-validated AUC (by patient, 95 % interval), the
    zero-shot AUC beside it, and the ``k`` other images it scores highest (``more_like_these``: id, path,
    probability). 400 when a class has fewer than two patients, 404 for an unknown id."""
    return await run_in_threadpool(_train, engine, request)


@router.get("/probes")
def list_probes(engine: ServerEngine = Depends(get_engine)) -> dict[str, Any]:
    """Every saved probe with its report."""
    return {"probes": engine.medsearch.learning.probes()}


@router.get("/splits/{name}")
def split_counts(name: str, engine: ServerEngine = Depends(get_engine)) -> dict[str, Any]:
    """Images per split of field ``name`` now, and how ``medsearch split`` made it (or null). 404 when
    no image has the field."""
    return engine.medsearch.learning.split_counts(name)
