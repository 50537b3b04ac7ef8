"""The ``medsearch`` command. A thin shell over ``medsearch.api``: it parses options, calls the library and
prints a table or JSON. Heavy libraries load only inside the commands that need them."""

from __future__ import annotations

from dataclasses import asdict
from importlib import import_module
from pathlib import Path
from typing import Annotated, Literal

import typer
from medsearch.cli.common import (
    DEFAULT_STORE,
    DeviceOption,
    JsonOption,
    LocalOption,
    ModelOption,
    PathsOption,
    PrecisionOption,
    ServerOption,
    ShowFieldsOption,
    StoreOption,
    WindowOption,
    WorkersOption,
    cli_errors,
    print_json,
    show_progress,
)
from medsearch.cli.dicomweb import (
    AllowRemovalsOption,
    BodyPartOption,
    DryRunOption,
    ModalityOption,
    QidoOption,
    SinceLastOption,
    StudyDateOption,
)
from medsearch.cli.discovery import chosen_server
from medsearch.cli.distributed import Executor, ExecutorOption, ShardsOption, index_on_ray
from medsearch.cli.fresh import removed_if_failed, store_exists
from medsearch.cli.help import CONTEXT, plain_types, show_version
from medsearch.cli.metadata import (
    ClashPrefixOption,
    KeyOption,
    RenameOption,
    RootOption,
    SkipOption,
    show_sidecar_report,
    sidecar_options,
)
from medsearch.cli.query_options import query_command
from medsearch.cli.results import show_found
from medsearch.cli.units import note_left_out
from medsearch.language.present import fields
from medsearch.query.spec import QuerySpec

plain_types()
app = typer.Typer(help="Semantic search over medical images with MedSigLIP.", no_args_is_help=True,
                  rich_markup_mode=None, context_settings=CONTEXT,
                  pretty_exceptions_enable=False)


@app.callback()
def language(
    glossary: Annotated[list[Path] | None, typer.Option(
        "--glossary", help="Korean -> English glossary TOML over the built-in one (or MEDSEARCH_GLOSSARY).")] = None,
    unknown_words: Annotated[str | None, typer.Option(
        "--unknown-words", help="Words no glossary knows: warn (default), refuse, or off (embed as typed).")] = None,
    _version: Annotated[bool, typer.Option(
        "--version", callback=show_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Options for every command: how non-English queries, labels and criteria are read."""
    from medsearch.language.settings import apply_options

    apply_options(glossary, unknown_words)


@app.command()
def index(
    paths: Annotated[list[str], typer.Argument(
        help="Folders or files to index (recursively), or a DICOMweb source dicomweb+https://HOST/PATH.")],
    store: StoreOption = DEFAULT_STORE,
    model: ModelOption = None,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "auto",
    batch_size: Annotated[int, typer.Option(help="Images per model call; 0 picks 16 on a CPU, 64 on a GPU.")] = 0,
    workers: WorkersOption = -1,
    window: WindowOption = None,
    frames: Annotated[str, typer.Option(help="Multi-frame files: 'middle' frame or 'all' frames.")] = "middle",
    voi: Annotated[str, typer.Option(help="Greyscale DICOM VOI: 'google' (Google's served MedSigLIP pixels) "
                                     "or 'robust' (percentile stretch without a window).")] = "google",
    metadata: Annotated[Path | None, typer.Option(help="Sidecar CSV joined to the images afterwards.")] = None,
    key: KeyOption = None, rename: RenameOption = None, clash_prefix: ClashPrefixOption = None,
    skip: SkipOption = None, root: RootOption = None,
    keep_identity: Annotated[bool, typer.Option(
        "--keep-identity", help="Store patient names, IDs and birth dates (off: only a keyed pseudonym).")] = False,
    patient_key: Annotated[Path | None, typer.Option(
        help="File holding the secret for patient pseudonyms, kept outside the store (also MEDSEARCH_PATIENT_KEY; "
             "default: a secret inside the store).")] = None,
    modality: ModalityOption = None,
    study_date: StudyDateOption = None,
    body_part: BodyPartOption = None,
    qido: QidoOption = None,
    since_last: SinceLastOption = False,
    dry_run: DryRunOption = False,
    allow_removals: AllowRemovalsOption = False,
    executor: ExecutorOption = Executor.local,
    shards: ShardsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Index images (PNG, JPEG, TIFF, BMP, DICOM) into the store; only new or changed files are embedded.
    A DICOMweb source is searched (QIDO-RS) and fetched (WADO-RS); credentials come from the environment."""
    from medsearch.api import Medsearch
    from medsearch.cli.dicomweb import SyncChoices, index_sources, source_filters
    from medsearch.errors import InvalidQuery
    from medsearch.indexer.dicomweb.source import is_source
    from medsearch.indexer.frames import ReadOptions
    from medsearch.indexer.pipeline import IndexSettings
    from medsearch.indexer.voi import parse_voi
    from medsearch.storage.patient_key import read_key_file

    existed = store_exists(store)
    with cli_errors(as_json), Medsearch.open(store, model, device, create=True, writable=True,
                                             precision=precision) as ms, removed_if_failed(ms, existed):
        options = ReadOptions(window=parse_window(window), frames=parse_frames(frames), keep_identity=keep_identity,
                              voi=parse_voi(voi),
                              patient_key_secret=read_key_file(patient_key) if patient_key else None)
        sidecar_args = sidecar_options(key, rename, clash_prefix, skip, root)
        settings = IndexSettings(batch_size=batch_size, workers=workers, read_options=options)
        filters = source_filters(modality, study_date, body_part, qido)
        if any(is_source(path) for path in paths):
            choices = SyncChoices(filters, since_last, dry_run, allow_removals)
            if (report := index_sources(ms, paths, choices, settings, as_json)) is None:
                return
        elif filters or since_last or dry_run or allow_removals:
            raise InvalidQuery("--modality, --study-date, --body-part, --qido, --since-last, --dry-run and "
                               "--allow-removals apply to a DICOMweb source (dicomweb+https://...)")
        elif executor == Executor.ray or shards:
            report = index_on_ray(ms, paths, settings, shards, as_json, executor)
        elif as_json or not show_progress():
            report = ms.index(paths, settings)
        else:
            report = _index_with_bar(ms, paths, settings)
        sidecar = ms.import_metadata(metadata, **sidecar_args) if metadata else None
        if as_json:
            print_json({**report.as_dict(), **({"metadata": asdict(sidecar)} if sidecar else {})})
            return
        if sidecar:
            show_sidecar_report(sidecar, as_json=False, how_to_list=f"medsearch import-metadata {metadata} --verbose")
        typer.echo(
            f"added {report.added}, updated {report.updated}, unchanged {report.unchanged}, moved {report.moved}, "
            f"removed {report.removed}, failed {report.failed} in {report.seconds:.1f} s"
            + (f"; {report.sharded} files written to shards in {shards} (load them with `medsearch load`)"
               if shards else "")
            + (f" ({report.precision})" if report.precision else "")
            + (f"; {report.reports} structured report(s) read as study reports" if report.reports else "")
        )
        for failure in report.failures[:20]:
            again = " (failed before, unchanged: not read again)" if failure.get("known") else ""
            typer.echo(f"  failed: {failure['path']}: {failure['reason']}{again}", err=True)
        if report.other_precisions:
            typer.echo(f"note: this store also holds vectors embedded in {', '.join(report.other_precisions)}; "
                       f"these are {report.precision}. They agree to about 1e-3 in cosine, not exactly: keep one "
                       "--precision per store where rankings must be reproducible.", err=True)


def parse_window(text: str | None) -> tuple[float, float] | None:
    """``"40,400"`` or a preset name -> (center, width); None for the file's own window. Raises InvalidQuery."""
    from medsearch.errors import InvalidQuery
    from medsearch.indexer.windows import parse_window as check

    if text is None or not text.strip():
        return None
    if "," not in text:
        return check(text)
    try:
        center, width = (float(part) for part in text.split(","))
    except ValueError:
        raise InvalidQuery(f"bad window {text!r}: expected CENTER,WIDTH, e.g. -600,1500") from None
    return check((center, width))


def parse_frames(text: str) -> Literal["middle", "all"]:
    from medsearch.errors import InvalidQuery

    if text not in ("middle", "all"):
        raise InvalidQuery(f"--frames takes 'middle' or 'all', not {text!r}")
    return text  # type: ignore[return-value]


def _index_with_bar(ms, paths, settings):  # type: ignore[no-untyped-def]
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("embedding"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("embedding", total=None)
        return ms.index(paths, settings, progress=lambda done, total: bar.update(task, completed=done, total=total))


QueryStoreOption = Annotated[str, typer.Option("--store", envvar="MEDSEARCH_STORE", help="Store directory.")]
"""``--store`` as text: typer turns a ``Path`` option through pydantic, which a query sent to a server
need not import (0.3 s)."""
CountOption = Annotated[bool, typer.Option("--count", help="Print only how many images (or units) pass.")]


@app.command()
@query_command("search")
def search(
    spec: QuerySpec,
    count: CountOption = False,
    show_fields: ShowFieldsOption = None,
    paths: PathsOption = False,
    server: ServerOption = None,
    local: LocalOption = False,
    store: QueryStoreOption = str(DEFAULT_STORE),
    model: ModelOption = None,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "auto",
    as_json: JsonOption = False,
) -> None:
    """Find images that match a sentence (text-to-image), with filters, thresholds and composed parts."""
    with cli_errors(as_json):
        spec.validate()  # before a server is asked or the store opened
    server = chosen_server(server, local, Path(store), (model, device, precision) != (None, "auto", "auto"))
    if server:
        import medsearch.cli.remote as remote

        with cli_errors(as_json):
            remote.show_search(server, spec, count, as_json, show_fields, paths)
        return
    from medsearch.api import Medsearch

    with cli_errors(as_json), Medsearch.open(store, model, device, precision=precision) as ms:
        translation = ms.searched_as(spec.text) if spec.text else None
        if count:
            total = ms.queries.count(spec)
            print_json({"query": spec.text, **fields(translation), "count": total}) if as_json else typer.echo(total)
            return
        show_found(spec, ms.queries.run(spec), as_json, translation, show_fields, paths)
        note_left_out(spec, ms.queries.without_unit(spec))


@app.command()
@query_command("similar")
def similar(
    spec: QuerySpec,
    show_fields: ShowFieldsOption = None,
    paths: PathsOption = False,
    server: ServerOption = None,
    local: LocalOption = False,
    store: QueryStoreOption = str(DEFAULT_STORE),
    model: ModelOption = None,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "auto",
    as_json: JsonOption = False,
) -> None:
    """Find images similar to an image (image-to-image; the query image itself is left out), or
    series/studies similar to its series/study."""
    with cli_errors(as_json):
        spec.validate()  # before a server is asked or the store opened
    by_id_or_file = str(spec.target).isdigit() or Path(str(spec.target)).expanduser().is_file()
    server = chosen_server(server, local or not by_id_or_file, Path(store),
                           (model, device, precision) != (None, "auto", "auto"))
    if server:
        import medsearch.cli.remote as remote

        with cli_errors(as_json):
            show_found(spec, remote.similar(server, spec), as_json, None, show_fields, paths)
        return
    from medsearch.api import Medsearch

    with cli_errors(as_json), Medsearch.open(store, model, device, precision=precision) as ms:
        show_found(spec, ms.queries.run(spec), as_json, None, show_fields, paths)
        note_left_out(spec, ms.queries.without_unit(spec))


@app.command()
def show(
    image_id: Annotated[int, typer.Argument(help="An image id in the store (the id column of search).")],
    store: StoreOption = DEFAULT_STORE,
    as_json: JsonOption = False,
) -> None:
    """Print one image: its id, path, metadata and every sidecar/label field."""
    from medsearch.api import Medsearch

    with cli_errors(as_json), Medsearch.open(store) as ms:
        item = ms.item(image_id)
        if as_json:
            print_json(item)
            return
        typer.echo(f"id: {item['id']}\npath: {item['path']}")
        for section in ("metadata", "fields"):
            for name, value in item[section].items():
                typer.echo(f"{name}: {value}")


@app.command()
def info(store: StoreOption = DEFAULT_STORE, as_json: JsonOption = False) -> None:
    """Show the store's facts: counts, model, dimension, index type, generation and failures."""
    from medsearch.api import Medsearch

    with cli_errors(as_json), Medsearch.open(store) as ms:
        facts = ms.info()
        if as_json:
            print_json(facts)
            return
        for key, value in facts.items():
            if key == "failures":
                typer.echo(f"failures: {len(value)}")
                for failure in value[:50]:
                    typer.echo(f"  {failure['path']}: {failure['reason']}")
            elif key == "source_failures":
                for url, pending in value.items():
                    typer.echo(f"pending fetches of {url}: {len(pending)} (retried by the next sync)")
            elif isinstance(value, list):
                typer.echo(f"{key}: {', '.join(map(str, value)) or '-'}")
            else:
                typer.echo(f"{key}: {value}")


# Other command groups live in their own modules, each with ``register(app)``.
COMMAND_MODULES: tuple[str, ...] = (
    "medsearch.cli.metadata", "medsearch.cli.labels", "medsearch.cli.serve", "medsearch.cli.reindex",
    "medsearch.cli.check", "medsearch.cli.cohort", "medsearch.cli.fidelity", "medsearch.cli.explain",
    "medsearch.cli.learn", "medsearch.cli.distributed", "medsearch.cli.roots", "medsearch.cli.units",
    "medsearch.cli.reports",
)
for _name in COMMAND_MODULES:
    import_module(_name).register(app)

