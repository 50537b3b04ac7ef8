"""Index a DICOMweb source: plan the sync, refuse a plan that would remove more than a small share of the
source (a failing server can look like an emptied archive), remove what the source lost, fetch and embed
what is new through the same pipeline as files, then record the cursor. A killed or failed sync keeps every
committed batch and leaves the old cursor, so running it again carries on (instances already stored are not
fetched again). ``preview_source`` is the same plan without fetching or writing anything (``--dry-run``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from medsearch.indexer.dicomweb.client import ClientSettings, DicomWebClient
from medsearch.indexer.dicomweb.credentials import credentials_for
from medsearch.indexer.dicomweb.fetch import fetch_all, fetch_failed, load_fetched
from medsearch.indexer.dicomweb.settings import client_settings_from_env, share_from_env
from medsearch.indexer.dicomweb.source import SourceError, parse_source
from medsearch.indexer.dicomweb.sync import SyncPlan, plan_sync
from medsearch.indexer.embedder import Embedder
from medsearch.indexer.pipeline import IndexReport, IndexSettings, Progress, Work, embed_tasks
from medsearch.storage.sources import save_cursor, source_urls
from medsearch.storage.store import Store
from medsearch.storage.writes import Batch, forget_failures, write_batch


class RemovalRefused(SourceError):
    """A sync would remove more than the allowed share of a source's stored instances."""

    code = "removal_refused"


@dataclass
class SourceSettings:
    """``concurrency``: downloads at a time; ``overlap_days``: how far back a study-date window reaches
    before the last sync date; ``max_removed_share``: the largest share of a source's stored instances one
    sync may remove unless ``allow_removals`` (``MEDSEARCH_DICOMWEB_MAX_REMOVED``, percent, default 5)."""

    concurrency: int = 4
    overlap_days: int = 1
    client: ClientSettings = field(default_factory=client_settings_from_env)
    max_removed_share: float = field(default_factory=share_from_env)
    allow_removals: bool = False


def index_source(store: Store, get_embedder: Callable[[], Embedder], url: str, filters: dict[str, str],
                 since_last: bool = False, settings: IndexSettings | None = None,
                 source_settings: SourceSettings | None = None, progress: Progress | None = None) -> IndexReport:
    """Sync the DICOMweb source at ``url`` (``dicomweb+http(s)://...``) into ``store``: new matching
    instances are embedded, vanished ones removed. Raises SourceError (server unreachable, refused, timed
    out or malformed), RemovalRefused (nothing written), InvalidQuery (URL or filters), ModelMismatch."""
    settings = settings or IndexSettings()
    source_settings = source_settings or SourceSettings()
    report = IndexReport()
    started = time.perf_counter()
    with _client(store, url, source_settings) as client:
        plan = plan_sync(store, client, filters, since_last, source_settings.overlap_days)
        report.stages["plan"] = round(time.perf_counter() - started, 4)
        _guard(plan, client.source.url, source_settings)
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


def preview_source(store: Store, url: str, filters: dict[str, str], since_last: bool = False,
                   source_settings: SourceSettings | None = None) -> SyncPlan:
    """The plan a sync would carry out, without fetching or writing anything. Raises SourceError,
    InvalidQuery."""
    source_settings = source_settings or SourceSettings()
    with _client(store, url, source_settings) as client:
        return plan_sync(store, client, filters, since_last, source_settings.overlap_days)


def _client(store: Store, url: str, source_settings: SourceSettings) -> DicomWebClient:
    source = parse_source(url)
    return DicomWebClient(source, credentials_for(source.url, source_urls(store)), source_settings.client)


def _guard(plan: SyncPlan, url: str, settings: SourceSettings) -> None:
    """Raise RemovalRefused when ``plan`` removes more than the allowed share of the stored instances."""
    removed, stored = len(plan.removed), plan.stored
    if settings.allow_removals or not removed or removed <= settings.max_removed_share * stored:
        return
    raise RemovalRefused(
        f"this sync would remove {removed} of the {stored} stored instances of {url} "
        f"({100 * removed / max(stored, 1):.0f} %, more than the {100 * settings.max_removed_share:g} % allowed); "
        "nothing was changed. A server failing or misconfigured can look like this: see the plan with "
        "--dry-run, and run again with --allow-removals if the source really lost them")


def _remove(store: Store, plan: SyncPlan, report: IndexReport) -> None:
    report.unchanged, report.removed = plan.unchanged, len(plan.removed)
    if plan.forgotten:
        forget_failures(store, plan.forgotten)
    if not plan.removed:
        return
    if store.model_record() is not None:
        store.vectors.load()
    write_batch(store, Batch(remove_paths=plan.removed))
    forget_failures(store, plan.removed)
