"""Reports over HTTP: ``POST /api/reports`` imports a CSV of reports (the upload: a form's ``file`` field
or the body itself, capped at the server's upload limit and the CSV limit), ``GET /api/reports`` says how
many studies have one and which ``report.FINDING`` fields exist. The same token as every other route.
Only built-in label sets are taken (a label-set file would be a path on the server's disk), and paths in a
path-keyed CSV are matched as given (absolute), never read."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from medsearch.errors import InvalidQuery
from medsearch.labels.labelsets import builtin_label_sets
from medsearch.reports.csv_import import MAX_BYTES
from medsearch.server.admission import admit
from medsearch.server.deps import ServerSettings, get_engine, get_settings
from medsearch.server.engine import ServerEngine
from medsearch.server.security import check_token
from medsearch.server.upload import read_upload
from starlette.concurrency import run_in_threadpool

router = APIRouter(prefix="/api/reports", tags=["reports"], dependencies=[Depends(check_token)])


@router.post("", dependencies=[Depends(admit("upload"))], openapi_extra={"requestBody": {"content": {
    "multipart/form-data": {"schema": {"type": "object", "properties": {"file": {"type": "string",
                                                                                  "format": "binary"}}}},
    "text/csv": {"schema": {"type": "string"}}}}})
async def import_reports(
    request: Request,
    key: Annotated[Literal["study_uid", "accession", "path"] | None, Query(
        description="The key column's kind (default: the first present of study_uid, accession, path).")] = None,
    keep_report_text: Annotated[bool, Query(description="Store the report text itself (PHI-prone).")] = False,
    label_set: Annotated[str, Query(max_length=200, description="A built-in label set.")] = "cxr-findings",
    engine: ServerEngine = Depends(get_engine),
    settings: ServerSettings = Depends(get_settings),
) -> dict[str, Any]:
    """Import a CSV of reports, as ``medsearch reports import``: answers what was stored, the bad rows by
    line and the label counts. 413 past the upload limit; 400 for a bad file (nothing stored)."""
    if label_set not in builtin_label_sets():
        raise InvalidQuery(f"unknown label set {label_set!r}; over HTTP one of {', '.join(builtin_label_sets())}")
    upload = await read_upload(request, min(settings.upload_limit, MAX_BYTES))
    summary = await run_in_threadpool(engine.medsearch.reports.import_csv, upload.data, key=key,
                                      keep_text=keep_report_text, label_set=label_set, name="the uploaded CSV")
    return summary.as_dict()


@router.get("")
def summary(engine: ServerEngine = Depends(get_engine)) -> dict[str, Any]:
    """How many studies have a report, and the findings their labels name (``report.FINDING`` fields)."""
    return engine.medsearch.reports.summary()
