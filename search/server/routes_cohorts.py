"""Research cohorts over HTTP: create (the CLI's criteria strings), list, show, export as a download and
delete. Cohorts live in their own tables: the server writes them in one SQLite transaction each without
the indexer's writer lock (``writable`` only guards the FAISS snapshot); the cohort service serialises
the server's own cohort writes. Criteria naming files (``image:PATH``) are refused: only ids come from the
client, and exports are streamed, never written where the client says."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse
from medsearch.cohorts.criteria import parse_criterion
from medsearch.errors import InvalidQuery
from medsearch.server.deps import get_engine
from medsearch.server.engine import ServerEngine
from medsearch.server.routes_labels import LabelChoice, label_set_or_default
from medsearch.server.security import check_token
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

router = APIRouter(prefix="/api/cohorts", tags=["cohorts"], dependencies=[Depends(check_token)])

Criteria = Annotated[list[Annotated[str, Field(max_length=4000)]], Field(max_length=50)]
HTTP_FORMATS = {"csv": "text/csv", "jsonl": "application/x-ndjson", "uids": "text/csv"}


class Discordant(LabelChoice):
    """As ``medsearch cohort create --discordant``: the finding, the labels whose prompts score it (default
    ``labels_set`` cxr-findings), direction, k, and the least disagreement kept."""

    finding: str = Field(min_length=1, max_length=200)
    direction: Literal["model-positive", "report-positive", "both"] = "both"
    k: int | None = Field(default=None, ge=1, le=1_000_000)
    min_disagreement: float = Field(default=0.5, ge=0, le=1)


class CohortRequest(BaseModel):
    """As ``medsearch cohort create``: include/exclude criteria (text:TEXT>=P, text:TEXT score>=C, id:N>=C,
    SUBJECT top N, where:EXPR), where filters, one_per (study, series, patient or COLUMN), near_duplicates,
    unit (image, or series/study: the members are the units holding a passing image, one row each); or
    ``discordant`` (``Discordant``) alone: where model and report disagree (unit image or study)."""

    name: str = Field(min_length=1, max_length=200)
    include: Criteria = []
    exclude: Criteria = []
    where: Criteria = []
    one_per: str | None = Field(default=None, max_length=200)
    near_duplicates: float | None = Field(default=None, gt=0, le=1)
    unit: Literal["image", "series", "study"] = "image"
    discordant: Discordant | None = None


def _create_discordant(engine: ServerEngine, request: CohortRequest) -> dict[str, Any]:
    """A discordance cohort; criteria given with it are refused. Raises InvalidQuery."""
    spec = request.discordant
    assert spec is not None
    if request.include or request.exclude or request.where or request.one_per or request.near_duplicates:
        raise InvalidQuery("discordant makes a cohort of its own: give it without include, exclude, where, "
                           "one_per or near_duplicates")
    return engine.medsearch.cohorts.create_discordant(request.name, label_set_or_default(spec), spec.finding,
                                                      spec.direction, spec.k, spec.min_disagreement, request.unit)


def _no_files(request: CohortRequest) -> None:
    """Raise InvalidQuery for a malformed criterion or one naming a file (this server reads no path)."""
    parsed = [parse_criterion(text) for text in [*request.include, *request.exclude]]
    if any(criterion.kind == "image" for criterion in parsed):
        raise InvalidQuery("image: criteria name files, which this server does not read; use id:N")


def _create(engine: ServerEngine, request: CohortRequest) -> dict[str, Any]:
    if request.discordant is not None:
        return _create_discordant(engine, request)
    _no_files(request)
    return engine.medsearch.cohorts.create(request.name, request.include, request.exclude, request.where,
                                           request.one_per, request.near_duplicates, request.unit)


@router.post("", status_code=201)
async def create(request: CohortRequest, engine: ServerEngine = Depends(get_engine)) -> dict[str, Any]:
    """Evaluate and save a cohort; answers its manifest (funnel, criteria, model, generation) and members."""
    return await run_in_threadpool(_create, engine, request)


@router.get("")
def list_all(engine: ServerEngine = Depends(get_engine)) -> dict[str, Any]:
    """Every cohort: name, created date, runs, and the latest run's size and generation."""
    return {"cohorts": engine.medsearch.cohorts.list()}


@router.get("/{name}")
def show(name: str, run: Annotated[int | None, Query(ge=1)] = None,
         engine: ServerEngine = Depends(get_engine)) -> dict[str, Any]:
    """A cohort's manifest and members, best first (the latest run, or ``run``)."""
    return engine.medsearch.cohorts.show(name, run)


@router.get("/{name}/export", response_class=FileResponse,
            responses={200: {"content": {media: {} for media in HTTP_FORMATS.values()}}})
def export_members(name: str,
                   format: Annotated[str, Query(description="csv, jsonl or uids (DICOM UIDs).")] = "csv",
                   columns: Annotated[str, Query(max_length=2000, description="Extra columns, comma-separated.")] = "",
                   run: Annotated[int | None, Query(ge=1)] = None,
                   engine: ServerEngine = Depends(get_engine)) -> FileResponse:
    """The members as a download, written by the CLI's exporter into a temporary folder removed after the
    response. The ``links`` format (files on the server's disk) is CLI-only."""
    if format not in HTTP_FORMATS:
        raise InvalidQuery(f"unknown export format {format!r}: over HTTP use one of {', '.join(HTTP_FORMATS)}")
    folder = Path(tempfile.mkdtemp(prefix="medsearch-export-"))
    try:
        wanted = [c.strip() for c in columns.split(",") if c.strip()]
        output = folder / "members"
        engine.medsearch.cohorts.export(name, format, output, wanted, False, run)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    filename = f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.{'csv' if format == 'uids' else format}"
    return FileResponse(output, media_type=HTTP_FORMATS[format], filename=filename,
                        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True))


@router.delete("/{name}")
def delete(name: str, engine: ServerEngine = Depends(get_engine)) -> dict[str, str]:
    """Delete a cohort with all its runs."""
    engine.medsearch.cohorts.delete(name)
    return {"deleted": name}
