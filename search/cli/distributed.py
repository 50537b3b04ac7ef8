"""``medsearch index --executor ray`` (Ray Data, on this machine or the cluster at ``RAY_ADDRESS``) and
``medsearch load SHARDS`` (load the Parquet shards a ``--shards`` run wrote). The logic is in
``medsearch.indexer.distributed``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
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


RootsOption = Annotated[list[Path] | None, typer.Option(
    "--root", help="A folder whose files the shards may name (repeatable); the roots the store already indexes "
                   "count too. A row naming a file anywhere else is refused and recorded as a failure.")]


def load(
    shards: Annotated[str, typer.Argument(help="The folder or URI (s3://bucket/prefix) the shards were written to.")],
    roots: RootsOption = None,
    store: StoreOption = DEFAULT_STORE,
    as_json: JsonOption = False,
) -> None:
    """Load Parquet shards (from `medsearch index --executor ray --shards`) into the store. Files already
    stored with the same content are skipped, so loading a shard again duplicates nothing. Exits with 7 when
    a shard could not be read (the others are loaded)."""
    from medsearch.api import Medsearch
    from medsearch.cli.fresh import removed_if_failed, store_exists

    existed = store_exists(store)
    with cli_errors(as_json), Medsearch.open(store, create=True, writable=True) as ms, removed_if_failed(ms, existed):
        if as_json or not show_progress():
            report = ms.load_shards(shards, roots=roots or [])
        else:
            with ProgressBar("loading shards") as update:
                report = ms.load_shards(shards, progress=update, roots=roots or [])
    _print_load(report, as_json)


def _print_load(report: Any, as_json: bool) -> None:
    """The report (JSON, or a line and the first failures on stderr); exit 7 when a shard failed."""
    if as_json:
        print_json(report.as_dict())
    else:
        typer.echo(f"loaded {report.added} new and {report.updated} changed files, {report.unchanged} already "
                   f"stored, {report.failed} failed, in {report.seconds:.1f} s")
        for failure in report.failures[:20]:
            typer.echo(f"  failed: {failure['path']}: {failure['reason']}", err=True)
        for shard in report.failed_shards:
            typer.echo(f"  shard not loaded: {shard['shard']}: {shard['error']['message']}", err=True)
    if report.failed_shards:
        raise typer.Exit(7)


def register(app: typer.Typer) -> None:
    """Add ``load`` to ``app`` (``--executor`` is an option of ``index``)."""
    app.command()(load)
