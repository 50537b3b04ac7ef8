"""The ``index`` command's DICOMweb options, and indexing one or more DICOMweb sources with them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from medsearch.api import Medsearch
    from medsearch.indexer.pipeline import IndexReport, IndexSettings

ModalityOption = Annotated[str | None, typer.Option(
    help="DICOMweb: only these modalities, comma-separated (e.g. CR,DX).")]
StudyDateOption = Annotated[str | None, typer.Option(
    help="DICOMweb: study date or range YYYYMMDD-YYYYMMDD (either end may be left open).")]
BodyPartOption = Annotated[str | None, typer.Option(help="DICOMweb: only this BodyPartExamined.")]
QidoOption = Annotated[list[str] | None, typer.Option(
    "--qido", help="DICOMweb: any QIDO-RS filter KEYWORD=VALUE, e.g. InstitutionName=General; repeatable.")]
SinceLastOption = Annotated[bool, typer.Option(
    "--since-last", help="DICOMweb: only what changed since the last sync of this source (same filters).")]


def source_filters(modality: str | None, study_date: str | None, body_part: str | None,
                   qido: list[str] | None) -> dict[str, str]:
    """The QIDO filters of the options. Raises InvalidQuery."""
    from medsearch.indexer.dicomweb.query import make_filters

    return make_filters(modality, study_date, body_part, qido or ())


def index_sources(engine: Medsearch, paths: list[str], filters: dict[str, str], since_last: bool,
                  settings: IndexSettings) -> IndexReport:
    """Sync each DICOMweb source in ``paths``; one report summing them. Raises InvalidQuery when ``paths``
    mixes sources and folders, SourceError."""
    from medsearch.errors import InvalidQuery
    from medsearch.indexer.dicomweb.source import is_source
    from medsearch.indexer.pipeline import IndexReport

    if not all(is_source(path) for path in paths):
        raise InvalidQuery("index either DICOMweb sources or folders in one run, not both")
    total = IndexReport()
    for url in paths:
        report = engine.index_source(url, filters, since_last, settings)
        for name in ("added", "updated", "unchanged", "removed", "failed", "frames_added"):
            setattr(total, name, getattr(total, name) + getattr(report, name))
        total.seconds += report.seconds
        total.failures += report.failures
        total.precision = report.precision or total.precision
        total.other_precisions = report.other_precisions or total.other_precisions
        total.stages = report.stages if len(paths) == 1 else total.stages
    return total
