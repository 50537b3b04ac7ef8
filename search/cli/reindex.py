"""``medsearch reindex``: rebuild the store's FAISS index as another kind (exact, HNSW, IVF-SQ8 or IVF-PQ)."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Annotated

import typer
from medsearch.cli.common import DEFAULT_STORE, JsonOption, StoreOption, cli_errors, print_json


class IndexKind(StrEnum):
    """``--index-type``: a ``medsearch.storage.index_choice.IndexType`` value, or auto."""

    auto = "auto"
    flat = "flat"
    hnsw = "hnsw"
    ivf_sq8 = "ivf-sq8"
    ivf_pq = "ivf-pq"


def reindex(
    index_type: Annotated[IndexKind, typer.Option("--index-type", help="flat (exact), hnsw, ivf-sq8, ivf-pq "
                                                   "(millions of images), or auto (chosen from the image "
                                                   "count and --memory-budget-gb).")],
    memory_budget_gb: Annotated[float | None, typer.Option(help="GiB the index may use (auto).")] = None,
    store: StoreOption = DEFAULT_STORE,
    as_json: JsonOption = False,
) -> None:
    """Rebuild the vector index from the stored vectors as another index type, and save it. Also retrains
    an ivf-sq8 or ivf-pq index once `medsearch check` says that much was added since its training. The
    index in service (the saved one, and any server's) stays until the new one is saved whole."""
    from medsearch.storage.index_choice import IndexType, choose_index_type
    from medsearch.storage.store import Store

    with cli_errors(as_json), Store.open(store, writable=True) as opened:
        started = time.perf_counter()
        info = opened.info()
        count = opened.image_count()
        if index_type is IndexKind.auto:
            budget = None if memory_budget_gb is None else int(memory_budget_gb * 2**30)
            kind = choose_index_type(count, budget, info.dim if info else 1152)
        else:
            kind = IndexType.parse(index_type.value)
        opened.vectors.reindex(kind)
        facts = {"index_type": kind, "count": count, "seconds": round(time.perf_counter() - started, 3)}
        if as_json:
            print_json(facts)
        else:
            typer.echo(f"rebuilt the {kind} index of {count} images in {facts['seconds']:.1f} s")


def register(app: typer.Typer) -> None:
    """Add the performance commands to ``app``."""
    app.command()(reindex)
