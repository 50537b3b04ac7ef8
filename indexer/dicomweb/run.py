"""Index a DICOMweb source: plan the sync, remove what the source lost, fetch and embed what is new through
the same pipeline as files, then record the cursor. A killed or failed sync keeps every committed batch and
leaves the old cursor, so running it again carries on (instances already stored are not fetched again)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from medsearch.indexer.dicomweb.client import ClientSettings, DicomWebClient
from medsearch.indexer.dicomweb.fetch import fetch_all, fetch_failed, load_fetched
from medsearch.indexer.dicomweb.source import credentials_from_env, parse_source
from medsearch.indexer.dicomweb.sync import SyncPlan, plan_sync
from medsearch.indexer.embedder import Embedder
from medsearch.indexer.pipeline import IndexReport, IndexSettings, Progress, Work, embed_tasks
from medsearch.storage.sources import save_cursor
from medsearch.storage.store import Store
from medsearch.storage.writes import Batch, forget_failures, write_batch


@dataclass
class SourceSettings:
    """``concurrency``: downloads at a time; ``overlap_days``: how far back a study-date window reaches
    before the last sync date."""

    concurrency: int = 4
    overlap_days: int = 1
    client: ClientSettings = field(default_factory=ClientSettings)


def index_source(store: Store, get_embedder: Callable[[], Embedder], url: str, filters: dict[str, str],
                 since_last: bool = False, settings: IndexSettings | None = None,
                 source_settings: SourceSettings | None = None, progress: Progress | None = None) -> IndexReport:
    """Sync the DICOMweb source at ``url`` (``dicomweb+http(s)://...``) into ``store``: new matching
    instances are embedded, vanished ones removed. Raises SourceError (server unreachable, refused, timed
    out or malformed), InvalidQuery (URL or filters), ModelMismatch."""
    settings = settings or IndexSettings()
    source_settings = source_settings or SourceSettings()
    report = IndexReport()
    started = time.perf_counter()
    source = parse_source(url)
    with DicomWebClient(source, credentials_from_env(), source_settings.client) as client:
        plan = plan_sync(store, client, filters, since_last, source_settings.overlap_days)
        report.stages["plan"] = round(time.perf_counter() - started, 4)
        _remove(store, plan, report)
        try:
            if plan.to_fetch:
                fetched = fetch_all(client, plan.to_fetch, source_settings.concurrency)
                work = Work(fetched, len(plan.to_fetch), load_fetched, fetch_failed)
                embed_tasks(store, get_embedder, work, settings, report, progress)
        finally:
            store.vectors.save_snapshot()
            report.seconds = round(time.perf_counter() - started, 3)
    if plan.cursor is not None:
        save_cursor(store, plan.cursor)
    return report


def _remove(store: Store, plan: SyncPlan, report: IndexReport) -> None:
    report.unchanged, report.removed = plan.unchanged, len(plan.removed)
    if not plan.removed:
        return
    if store.model_record() is not None:
        store.vectors.load()
    write_batch(store, Batch(remove_paths=plan.removed))
    forget_failures(store, plan.removed)
