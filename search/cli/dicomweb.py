"""The ``index`` command's DICOMweb options, and indexing (or previewing the sync of) one or more DICOMweb
sources with them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from medsearch.api import Medsearch
    from medsearch.indexer.dicomweb.sync import SyncPlan
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
DryRunOption = Annotated[bool, typer.Option(
    "--dry-run", help="DICOMweb: print what the sync would add and remove; fetch and change nothing.")]
AllowRemovalsOption = Annotated[bool, typer.Option(
    "--allow-removals", help="DICOMweb: let the sync remove more than MEDSEARCH_DICOMWEB_MAX_REMOVED percent "
    "(default 5) of the source's stored instances.")]


@dataclass(frozen=True)
class SyncChoices:
    """The sync options of ``index``: filters, ``--since-last``, ``--dry-run``, ``--allow-removals``."""

    filters: dict[str, str]
    since_last: bool = False
    dry_run: bool = False
    allow_removals: bool = False


def source_filters(modality: str | None, study_date: str | None, body_part: str | None,
                   qido: list[str] | None) -> dict[str, str]:
    """The QIDO filters of the options. Raises InvalidQuery."""
    from medsearch.indexer.dicomweb.query import make_filters

    return make_filters(modality, study_date, body_part, qido or ())


def index_sources(engine: Medsearch, paths: list[str], choices: SyncChoices, settings: IndexSettings,
                  as_json: bool) -> IndexReport | None:
    """Sync each DICOMweb source in ``paths``; one report summing them (None after a ``--dry-run``, whose
    plans are printed here). Raises InvalidQuery when ``paths`` mixes sources and folders, SourceError
    (RemovalRefused: a sync would remove too much, nothing was changed)."""
    from medsearch.errors import InvalidQuery
    from medsearch.indexer.dicomweb.run import SourceSettings
    from medsearch.indexer.dicomweb.source import is_source
    from medsearch.indexer.pipeline import IndexReport

    if not all(is_source(path) for path in paths):
        raise InvalidQuery("index either DICOMweb sources or folders in one run, not both")
    if choices.dry_run:
        _preview(engine, paths, choices, as_json)
        return None
    total = IndexReport()
    for url in paths:
        report = engine.index_source(url, choices.filters, choices.since_last, settings,
                                     SourceSettings(allow_removals=choices.allow_removals))
        for name in ("added", "updated", "unchanged", "removed", "failed", "frames_added"):
            setattr(total, name, getattr(total, name) + getattr(report, name))
        total.seconds += report.seconds
        total.failures += report.failures
        total.precision = report.precision or total.precision
        total.other_precisions = report.other_precisions or total.other_precisions
        total.stages = report.stages if len(paths) == 1 else total.stages
    return total


def _preview(engine: Medsearch, paths: list[str], choices: SyncChoices, as_json: bool) -> None:
    from medsearch.cli.common import print_json
    from medsearch.indexer.dicomweb.run import preview_source
    from medsearch.indexer.dicomweb.source import require_client

    require_client()
    plans = {url: preview_source(engine.store, url, choices.filters, choices.since_last) for url in paths}
    if as_json:
        print_json({"dry_run": True, "sources": [_plan_dict(url, plan) for url, plan in plans.items()]})
        return
    for url, plan in plans.items():
        typer.echo(f"{url}: would add {len(plan.to_fetch)} (of which {plan.retried} failed before), remove "
                   f"{len(plan.removed)} of {plan.stored} stored, unchanged {plan.unchanged} ({plan.mode} sync; "
                   "dry run: nothing fetched or changed)")
        for item in plan.to_fetch:
            typer.echo(f"  add: {item.path}")
        for path in plan.removed:
            typer.echo(f"  remove: {path}")


def _plan_dict(url: str, plan: SyncPlan) -> dict[str, object]:
    return {"url": url, "mode": plan.mode, "add": [item.path for item in plan.to_fetch], "remove": plan.removed,
            "stored": plan.stored, "unchanged": plan.unchanged, "retried": plan.retried,
            "forget_failures": plan.forgotten}
