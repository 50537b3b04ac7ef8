"""``--executor ray``: the same work as ``medsearch.indexer.pipeline.embed_tasks``, spread over a Ray cluster.

Files are read and decoded in Ray tasks with a fraction of a CPU each, embedded in a pool of actors that
each load the model once (``actors.EmbedFiles``; one GPU per actor on GPU nodes), and streamed back to the
driver, where the one writer (``pipeline.write_loaded``) assigns ids, so FAISS ids stay the database's
primary keys. With ``shards`` the vectors go to Parquet files instead (``shards``), loaded afterwards.
A dead actor or node costs the batches in flight; Ray restarts the actor and runs them again.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from medsearch.errors import ModelUnavailable
from medsearch.indexer.distributed import local_ray
from medsearch.indexer.distributed.actors import EmbedFiles, ModelSpec, read_rows, unpack
from medsearch.indexer.distributed.shards import shard_stage
from medsearch.indexer.embedder import Embedder, model_record
from medsearch.indexer.frames import ReadOptions
from medsearch.indexer.load import Loaded
from medsearch.indexer.pipeline import (
    IndexReport,
    IndexSettings,
    Progress,
    Snapshots,
    Work,
    add_read_times,
    start_run,
    write_loaded,
)
from medsearch.storage.store import Store

GPU_BATCH = 64
"""Images per model call on GPU actors (``pipeline.default_batch_size`` picks from the driver's device)."""


@dataclass(frozen=True)
class RaySettings:
    """``actors``: embedding actors (0: one per GPU, else from the CPUs); ``actor_cpus``: CPUs per actor
    (0: chosen); ``read_cpus``: CPUs per read task, a fraction so that the actors never hold every CPU
    and starve the reads; ``shards``: a folder or URI (``s3://...``) to write Parquet shards to instead of
    the store; ``local_cpus``: CPUs of a local instance started when ``RAY_ADDRESS`` is not set."""

    actors: int = 0
    actor_cpus: float = 0.0
    read_cpus: float = 0.5
    shards: str | None = None
    local_cpus: int | None = None


@dataclass(frozen=True)
class Pool:
    actors: int
    cpus: float
    gpus: float


def require_ray(needed_by: str = "--executor ray") -> None:
    """Raises ModelUnavailable (one line: what needs it, what to install) when Ray Data is not installed."""
    try:
        import pyarrow  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        raise ModelUnavailable(f"{needed_by} needs Ray Data: pip install 'medsearch[ray]'") from None


def connect(local_cpus: int | None = None) -> dict[str, float]:
    """Join the cluster at ``RAY_ADDRESS`` when set, else start a local Ray (no dashboard) that ends with
    this process however it ends (``local_ray``). Returns the cluster's resources (``{"CPU": 2.0, ...}``).
    Raises ModelUnavailable when the local Ray does not start."""

    import ray
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # medsearch shows its own bar (files/s)
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    if not ray.is_initialized():
        if os.environ.get("RAY_ADDRESS"):
            ray.init(log_to_driver=False)
        else:
            ray.init(address=local_ray.start(local_cpus), log_to_driver=False, logging_level=logging.WARNING)
    return {key: float(value) for key, value in ray.cluster_resources().items()}


def size_pool(resources: dict[str, float], settings: RaySettings) -> Pool:
    """One actor per GPU; on CPUs, actors of up to 4 CPUs holding about three quarters of them."""
    gpus = int(resources.get("GPU", 0))
    if gpus:
        return Pool(settings.actors or gpus, settings.actor_cpus or 1.0, 1.0)
    cpus = resources.get("CPU", 1.0)
    per_actor = settings.actor_cpus or float(min(4, max(1, int(cpus) // 2)))
    return Pool(settings.actors or max(1, int(cpus * 0.75 // per_actor)), per_actor, 0.0)


class RayExecutor:
    """An ``medsearch.indexer.pipeline.EmbedStep`` running on Ray. Each actor loads the driver's model (its
    ``model_id``: a hub id, or a folder that must be at the same path on every node) on ``device``."""

    def __init__(self, device: str = "auto", settings: RaySettings | None = None) -> None:
        self.device, self.settings = device, settings or RaySettings()

    def __call__(self, store: Store, get_embedder: Callable[[], Embedder], work: Work, settings: IndexSettings,
                 report: IndexReport, progress: Progress | None = None) -> None:
        require_ray()
        embedder = get_embedder()
        started = time.perf_counter()
        pool = size_pool(connect(self.settings.local_cpus), self.settings)
        if settings.batch_size <= 0 and pool.gpus:
            settings = replace(settings, batch_size=GPU_BATCH)  # the driver may have no GPU of its own
        settings, options, _workers = start_run(store, embedder, settings, report)
        spec = ModelSpec(embedder.model_id, self.device, embedder.precision, embedder.revision, max(1, int(pool.cpus)))
        dataset = embedded(work, embedder, options, settings, spec, pool, self.settings.read_cpus)
        if self.settings.shards:
            report.sharded = _count(shard_stage(dataset, self.settings.shards, model_record(embedder),
                                                embedder.precision), work.total, progress)
        else:
            stream_to_store(store, dataset, embedder.dim, work, settings, report, progress)
        report.stages["ray"] = round(time.perf_counter() - started, 4)


def embedded(work: Work, embedder: Embedder, options: ReadOptions, settings: IndexSettings, spec: ModelSpec,
             pool: Pool, read_cpus: float) -> Any:
    """The lazy Ray dataset of embedded files: read tasks, then the actor pool. Blocks hold about a batch."""
    import ray.data

    batch_size = settings.batch_size
    items = [{"task": pickle.dumps(task)} for task in work.tasks]
    blocks = max(1, math.ceil(len(items) / batch_size))
    read: Any = read_rows  # Ray's stubs know only one-argument functions; the rest come from fn_kwargs
    reads = ray.data.from_items(items, override_num_blocks=min(len(items), blocks)).map_batches(
        read, batch_size=None, num_cpus=read_cpus,
        fn_kwargs={"load": work.load, "failed": work.failed, "options": options,
                   "preprocessor": embedder.preprocessor, "limits": settings.limits})
    return reads.map_batches(
        EmbedFiles, fn_constructor_kwargs={"spec": spec, "batch_size": batch_size}, batch_size=batch_size,
        compute=ray.data.ActorPoolStrategy(size=pool.actors), num_cpus=pool.cpus, num_gpus=pool.gpus)


def stream_to_store(store: Store, dataset: Any, dim: int, work: Work, settings: IndexSettings,
                    report: IndexReport, progress: Progress | None) -> None:
    """Write the dataset's files as they arrive, ``settings.batch_size`` frames per transaction."""
    pending: list[Loaded] = []
    vectors: list[np.ndarray] = []
    snapshots = Snapshots(store, settings.snapshot_every_s)
    for done, row in enumerate(dataset.iter_rows(), start=1):
        loaded, rows = unpack(row, dim)
        add_read_times(report, loaded)
        pending.append(loaded)
        vectors.append(rows)
        if sum(len(block) for block in vectors) >= settings.batch_size:
            write_loaded(store, pending, np.vstack(vectors), work.changed, report)
            pending, vectors = [], []
            snapshots.after_commit()
        if progress:
            progress(done, work.total)
    if pending:
        write_loaded(store, pending, np.vstack(vectors), work.changed, report)


def _count(dataset: Any, total: int, progress: Progress | None) -> int:
    """Run a dataset whose rows are ``{"files": n}`` per written shard; returns the files written."""
    done = 0
    for row in dataset.iter_rows():
        done += int(row["files"])
        if progress:
            progress(done, total)
    return done

