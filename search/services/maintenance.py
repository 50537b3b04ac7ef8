"""Maintenance of a store: rebuild its index, check (and repair) it, bring older stores up to date and
join metadata to its images. Each takes the store (and, to re-embed, the context's model)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from medsearch.context import Context
from medsearch.indexer.pipeline import IndexSettings, Progress
from medsearch.storage.store import Store


def reindex(store: Store, index_type: str, memory_budget_gb: float | None = None) -> dict[str, Any]:
    """Rebuild the vector index from the stored vectors as ``index_type`` (flat, hnsw, ivf-sq8, ivf-pq, or
    auto: chosen from the image count and ``memory_budget_gb``) and save it; the index in service stays until
    the new one is saved whole. Returns {index_type, count, seconds}. Raises InvalidQuery, StoreError."""
    from medsearch.storage.index_choice import IndexType, choose_index_type

    started = time.perf_counter()
    info = store.info()
    count = store.image_count()
    if index_type == "auto":
        budget = None if memory_budget_gb is None else int(memory_budget_gb * 2**30)
        kind = choose_index_type(count, budget, info.dim if info else 1152)
    else:
        kind = IndexType.parse(index_type)
    store.vectors.reindex(kind)
    return {"index_type": kind, "count": count, "seconds": round(time.perf_counter() - started, 3)}


def check(store: Store, repair: bool = False, remote: bool = True) -> Any:
    """Verify the store (``medsearch.storage.check.check_store``): database integrity, model record,
    vectors, FAISS snapshot, ids, files, and (``remote``) the instances of DICOMweb sources against their
    sources; with ``repair``, fix what can be fixed. Returns its report."""
    from medsearch.storage.check import check_store
    from medsearch.storage.sources import source_urls

    if not (remote and source_urls(store)):  # no DICOMweb source: no PACS client (nor httpx) needed
        return check_store(store, repair=repair)
    from medsearch.indexer.dicomweb.verify import check_sources

    return check_store(store, repair=repair, check_remote=check_sources)


def upgrade(ctx: Context, settings: IndexSettings | None = None, vectors_only: bool = False,
            progress: Progress | None = None) -> dict[str, Any]:
    """Re-embed every image made with an older preprocessing version (unless ``vectors_only``), then move
    older stores' vectors to their own table in 12 bits (and, with ``vectors_only``, compact the database).
    Returns the facts of both steps. Raises ModelUnavailable, StoreError."""
    from medsearch.indexer.upgrade import upgrade_store
    from medsearch.storage.shrink import shrink_vectors

    facts: dict[str, Any] = {}
    if not vectors_only:
        facts.update(vars(upgrade_store(ctx.store, lambda: ctx.encoder, settings or IndexSettings(),
                                        check_model=lambda: ctx.check_model(load=False))))
    facts["vectors"] = vars(shrink_vectors(ctx.store, progress, compact=vectors_only))
    return facts


def import_metadata(store: Store, csv_file: Path, **options: Any) -> Any:
    """Join a sidecar CSV to the indexed images (``medsearch.indexer.sidecar.import_sidecar``, whose
    keyword options this takes). Returns its report. Raises InvalidQuery."""
    from medsearch.indexer.sidecar import import_sidecar

    return import_sidecar(store, csv_file, **options)
