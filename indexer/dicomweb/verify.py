"""``medsearch check`` for the instances of DICOMweb sources: an instance is not a file on disk, so it is
checked against its source. Each known source is asked for its studies (one paged study-level search, the
same comparison ``--since-last`` makes); a stored study the source no longer has, or holds fewer instances
of, is searched again. What the source lost is a note (the next sync removes it), a source that cannot be
reached is a note saying it could not be checked, and a stored ``dicomweb+`` path under no source the store
was synced from is a problem (its thumbnail is never fetched; only indexing again can drop it)."""

from __future__ import annotations

from collections import Counter

from medsearch.errors import MedsearchError
from medsearch.indexer.dicomweb.client import DicomWebClient
from medsearch.indexer.dicomweb.credentials import credentials_for
from medsearch.indexer.dicomweb.settings import client_settings_from_env
from medsearch.indexer.dicomweb.source import parse_source, require_client
from medsearch.indexer.dicomweb.sync import SyncPlan, compare_studies
from medsearch.storage.check import REMOTE_PREFIX, CheckReport
from medsearch.storage.sources import load_cursor, source_urls, stored_under
from medsearch.storage.store import Store


def check_sources(store: Store, report: CheckReport) -> None:
    """Add to ``report`` what each source says about the instances stored from it. Never raises for a
    source that fails: that is a note."""
    known = source_urls(store)
    _unknown_paths(store, known, report)
    for url in known:
        stored = len(stored_under(store, url + "/"))
        if not stored:
            continue
        try:
            lost = _lost(store, url, known)
        except MedsearchError as error:
            report.notes.append(f"could not check the {stored} instances of {url} against the source: {error}")
            continue
        if lost:
            report.notes.append(f"{url} no longer lists {len(lost)} of the {stored} instances stored from it "
                                f"(e.g. {lost[0]}); the next sync of the source removes them")
        else:
            report.notes.append(f"{url} answered: its {stored} stored instances are all still listed")


def _lost(store: Store, url: str, known: list[str]) -> list[str]:
    """The stored instances of ``url`` the source no longer lists. Raises SourceError."""

    require_client()
    cursor = load_cursor(store, url)
    plan = SyncPlan()
    with DicomWebClient(parse_source(url), credentials_for(url, known), client_settings_from_env()) as client:
        compare_studies(store, client, cursor.filters if cursor else {}, plan, skip=set())
    return sorted(set(plan.removed))


def _unknown_paths(store: Store, known: list[str], report: CheckReport) -> None:
    stray = Counter(path.split("/studies/", 1)[0] for path in stored_under(store, REMOTE_PREFIX)
                    if not any(path.startswith(url + "/") for url in known))
    for prefix, count in sorted(stray.items()):
        report.add("unknown_source", f"{count} instances under {prefix[:200]}, which is no source this store was "
                   "synced from: nothing is fetched from there (index again from a known source, or remove them)")
