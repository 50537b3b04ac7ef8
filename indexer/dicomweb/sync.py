"""What a sync of a DICOMweb source must fetch and remove, and the cursor it leaves once done.

A full sync mirrors the source as filtered: every matching instance not yet stored is fetched, and stored
instances of this source that no longer match (deleted, or outside the new filters) are removed.
``--since-last`` asks only for what changed since the cursor: Orthanc's change feed where the server has
one (the studies that received instances are searched again), else a study-date window from the last sync
date minus an overlap. Deletions (Orthanc drops a deleted resource's changes from its feed, so the feed
cannot say): every ``--since-last`` compares the source's studies (one paged study-level search) with the
stored ones; stored studies gone are removed, and a study holding fewer instances than stored is searched
again. An instance is identified by its SOP Instance UID within its source: one listed under two series is
kept once (under the first path in sort order), so nothing is embedded twice.

Fetches that failed (nothing received: gone between listing and fetch, a proxy failing briefly, a malformed
body) are recorded as pending failures; every sync looks for them again (``--since-last`` searches their
studies), fetches those still listed and forgets those the source no longer lists (permanently gone). So
the cursor moves past an instance only once it is stored or gone.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from medsearch.errors import InvalidQuery
from medsearch.indexer.dicomweb.client import DicomWebClient
from medsearch.indexer.dicomweb.query import (
    STUDY_INSTANCES,
    STUDY_UID,
    RemoteInstance,
    each_search,
    first_value,
    identity,
    since,
)
from medsearch.storage.sources import Cursor, load_cursor, pending_under, stored_under
from medsearch.storage.store import Store

ORTHANC_FEED, DATE_FEED = "orthanc-changes", "study-date"
STUDY_FILTERS = ("StudyDate", "StudyInstanceUID", "AccessionNumber")
"""Filters that apply at study level too (used when comparing the source's studies with the stored ones)."""


@dataclass
class SyncPlan:
    to_fetch: list[RemoteInstance] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    cursor: Cursor | None = None
    mode: str = "full"  # full | changes | window
    stored: int = 0  # instances of the source stored before the sync
    forgotten: list[str] = field(default_factory=list)  # pending failures the source no longer lists
    retried: int = 0  # pending failures fetched again


def plan_sync(store: Store, client: DicomWebClient, filters: dict[str, str], since_last: bool,
              overlap_days: int = 1, today: dt.date | None = None) -> SyncPlan:
    """The plan of one sync. Raises SourceError (server), InvalidQuery (``since_last`` with other filters)."""
    url = client.source.url
    cursor = load_cursor(store, url) if since_last else None
    if cursor is not None and filters and filters != cursor.filters:
        raise InvalidQuery(f"--since-last keeps the filters of the last full sync ({cursor.filters or 'none'}); "
                           "run without --since-last to change them")
    today = today or dt.datetime.now(dt.UTC).date()
    last_change = client.orthanc_last_change()  # before searching: what arrives meanwhile comes next time
    feed = ORTHANC_FEED if last_change is not None else DATE_FEED
    if cursor is None:
        plan = _full(store, client, filters)
    elif cursor.feed == ORTHANC_FEED and cursor.change_seq is not None and last_change is not None:
        plan = _changes(store, client, cursor, last_change)
    else:
        plan = _window(store, client, cursor, overlap_days)
    if cursor is not None:
        _pending(store, client, cursor.filters, plan)
    plan.removed = sorted(set(plan.removed))
    plan.stored = len(stored_under(store, url + "/"))
    if plan.mode != "full":
        plan.unchanged = plan.stored - len(plan.removed)
    kept = cursor.filters if cursor is not None else filters
    plan.cursor = Cursor(url, feed, kept, last_change, today)
    return plan


def list_instances(client: DicomWebClient, filters: dict[str, str]) -> dict[str, str]:
    """Stored path -> StudyInstanceUID of every instance matching ``filters``, one per SOP Instance UID.
    Raises SourceError."""
    by_sop: dict[str, tuple[str, str]] = {}
    for search in each_search(filters):
        for item in client.search("instances", search):
            study, series, sop = identity(item)
            path = client.source.instance_path(study, series, sop)
            if sop not in by_sop or path < by_sop[sop][0]:
                by_sop[sop] = (path, study)
    return dict(sorted(by_sop.values()))


def _diff(plan: SyncPlan, listed: dict[str, str], stored: dict[str, str | None]) -> None:
    plan.to_fetch.extend(RemoteInstance(path, study) for path, study in listed.items() if path not in stored)
    plan.removed.extend(path for path in stored if path not in listed)
    plan.unchanged += sum(1 for path in listed if path in stored)


def _full(store: Store, client: DicomWebClient, filters: dict[str, str]) -> SyncPlan:
    plan = SyncPlan(mode="full")
    listed = list_instances(client, filters)
    _diff(plan, listed, stored_under(store, client.source.url + "/"))
    pending = pending_under(store, client.source.url + "/")
    plan.forgotten = sorted(path for path in pending if path not in listed)
    plan.retried = len(pending) - len(plan.forgotten)
    return plan


def _pending(store: Store, client: DicomWebClient, filters: dict[str, str], plan: SyncPlan) -> None:
    """Search again the studies of the pending failures (fetches that failed): fetch those still listed,
    forget the others."""
    queued = {item.path for item in plan.to_fetch}
    waiting = {path: study_of(path) for path in pending_under(store, client.source.url + "/") if path not in queued}
    for study in sorted({study for study in waiting.values() if study}):
        listed = list_instances(client, {**filters, "StudyInstanceUID": study})
        for path in sorted(path for path, of in waiting.items() if of == study):
            if path in listed:
                plan.to_fetch.append(RemoteInstance(path, study))
                plan.retried += 1
            else:
                plan.forgotten.append(path)
    plan.forgotten += sorted(path for path, study in waiting.items() if not study)


def study_of(path: str) -> str | None:
    """The StudyInstanceUID in a stored instance path, or None."""
    _, found, rest = path.partition("/studies/")
    return rest.split("/", 1)[0] or None if found else None


def _changes(store: Store, client: DicomWebClient, cursor: Cursor, last_change: int) -> SyncPlan:
    """Search again the studies that Orthanc's feed says received instances; then compare the studies."""
    plan = SyncPlan(mode="changes")
    studies: set[str] = set()
    looked_up: set[str] = set()
    for change in client.orthanc_changes(cursor.change_seq or 0, last_change):
        if int(change.get("Seq", 0)) > last_change:
            break
        kind, resource, resource_id = change.get("ChangeType"), change.get("ResourceType"), change.get("ID")
        if kind in ("NewInstance", "StableStudy") and isinstance(resource_id, str) and resource_id not in looked_up:
            looked_up.add(resource_id)
            uid = client.orthanc_study_uid(str(resource), resource_id)
            if uid is not None:
                studies.add(uid)
    prefix = client.source.url + "/"
    for uid in sorted(studies):
        _diff(plan, list_instances(client, {**cursor.filters, "StudyInstanceUID": uid}),
              stored_under(store, prefix, uid))
    compare_studies(store, client, cursor.filters, plan, skip=studies)
    return plan


def _window(store: Store, client: DicomWebClient, cursor: Cursor, overlap_days: int) -> SyncPlan:
    """Search the study dates from the last sync (minus the overlap) on; compare studies for deletions."""
    plan = SyncPlan(mode="window")
    start = (cursor.window_date or dt.date.min) - dt.timedelta(days=overlap_days)
    narrowed = since(cursor.filters, start) if cursor.window_date else cursor.filters
    if narrowed is not None:
        listed = list_instances(client, narrowed)
        stored = stored_under(store, client.source.url + "/")
        plan.to_fetch.extend(RemoteInstance(path, study) for path, study in listed.items() if path not in stored)
    compare_studies(store, client, cursor.filters, plan, skip=set())
    return plan


def compare_studies(store: Store, client: DicomWebClient, filters: dict[str, str], plan: SyncPlan,
                     skip: set[str]) -> None:
    """Remove the stored studies the source no longer has, and the missing instances of any study that now
    holds fewer instances than are stored of it. ``skip``: studies already searched in this plan."""
    wanted = {key: value for key, value in filters.items() if key in STUDY_FILTERS}
    remote: dict[str, int] = {}
    for item in client.search("studies", {**wanted, "includefield": STUDY_INSTANCES}):
        uid, count = first_value(item, STUDY_UID), first_value(item, STUDY_INSTANCES)
        if isinstance(uid, str):
            remote[uid] = int(count) if isinstance(count, int | str) and str(count).isdigit() else -1
    by_study: dict[str | None, list[str]] = defaultdict(list)
    for path, study in stored_under(store, client.source.url + "/").items():
        by_study[study].append(path)
    for study, paths in by_study.items():
        if study in skip:
            continue
        if study not in remote:
            plan.removed.extend(paths)
        elif 0 <= remote[study] < len(paths):
            listed = list_instances(client, {**filters, "StudyInstanceUID": study})
            plan.removed.extend(path for path in paths if path not in listed)
