"""``medsearch index --executor ray`` (Ray Data, on this machine or the cluster at ``RAY_ADDRESS``) and
``medsearch load SHARDS`` (load the Parquet shards a ``--shards`` run wrote). The logic is in
``medsearch.indexer.distributed``."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer
from medsearch.cli.common import (
    DEFAULT_STORE,
    JsonOption,
    ProgressBar,
    StoreOption,
    cli_errors,
    print_json,
    show_progress,
)


class Executor(StrEnum):
    local = "local"
    ray = "ray"


ExecutorOption = Annotated[Executor, typer.Option(
    help="local: decode and embed in this process (default); ray: Ray Data tasks and actors, on the cluster at "
         "RAY_ADDRESS or a local Ray (pip install 'medsearch\\[ray]').")]
ShardsOption = Annotated[str | None, typer.Option(
    help="With --executor ray: write the vectors as Parquet shards to this folder or URI (s3://...) instead "
         "of the store; load them afterwards with `medsearch load`.")]


def index_on_ray(ms: Any, paths: list[str], settings: Any, shards: str | None, as_json: bool,
                 executor: Executor) -> Any:
    """Run ``medsearch index``'s work through ``Medsearch.index_on_ray``, with a bar unless JSON. Raises
    InvalidQuery for ``--shards`` without ``--executor ray``."""
    from medsearch.errors import InvalidQuery
    from medsearch.indexer.distributed.executor import RaySettings

    if executor != Executor.ray:
        raise InvalidQuery("--shards needs --executor ray")
    ray_settings = RaySettings(shards=shards)
    if as_json or not show_progress():
        return ms.index_on_ray(paths, settings, ray_settings)
    with ProgressBar("embedding on Ray") as update:
        return ms.index_on_ray(paths, settings, ray_settings, progress=update)


def load(
    shards: Annotated[str, typer.Argument(help="The folder or URI (s3://bucket/prefix) the shards were written to.")],
    store: StoreOption = DEFAULT_STORE,
    as_json: JsonOption = False,
) -> None:
    """Load Parquet shards (from `medsearch index --executor ray --shards`) into the store. Files already
    stored with the same content are skipped, so loading a shard again duplicates nothing."""
    from medsearch.api import Medsearch
    from medsearch.cli.fresh import removed_if_failed, store_exists

    existed = store_exists(store)
    with cli_errors(as_json), Medsearch.open(store, create=True, writable=True) as ms, removed_if_failed(ms, existed):
        if as_json or not show_progress():
            report = ms.load_shards(shards)
        else:
            with ProgressBar("loading shards") as update:
                report = ms.load_shards(shards, progress=update)
        if as_json:
            print_json(report.as_dict())
            return
        typer.echo(f"loaded {report.added} new and {report.updated} changed files, {report.unchanged} already "
                   f"stored, {report.failed} failed, in {report.seconds:.1f} s")
        for failure in report.failures[:20]:
            typer.echo(f"  failed: {failure['path']}: {failure['reason']}", err=True)


def register(app: typer.Typer) -> None:
    """Add ``load`` to ``app`` (``--executor`` is an option of ``index``)."""
    app.command()(load)
