"""``medsearch upgrade`` (re-embed a store made with older preprocessing, in place, resumable) and
``medsearch preview FILE|ID -o out.png`` (write the exact model input as an image). The logic is in
``medsearch.indexer.upgrade`` and ``medsearch.indexer.preview``."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any

import typer
from medsearch.cli.common import (
    DEFAULT_STORE,
    DeviceOption,
    JsonOption,
    ModelOption,
    PrecisionOption,
    ProgressBar,
    StoreOption,
    WindowOption,
    WorkersOption,
    cli_errors,
    plural,
    print_json,
    show_progress,
)

VoiOption = Annotated[str | None, typer.Option(
    help="Greyscale DICOM VOI: 'google' (the default: Google's served MedSigLIP pixels) or 'robust' "
         "(0.5-99.5 percentile stretch without a window).")]


def upgrade(
    store: StoreOption = DEFAULT_STORE,
    model: ModelOption = None,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "auto",
    batch_size: Annotated[int, typer.Option(help="Images per model call (and per commit); 0 picks.")] = 0,
    workers: WorkersOption = -1,
    window: WindowOption = None,
    voi: VoiOption = None,
    vectors_only: Annotated[bool, typer.Option("--vectors-only", help="Only move older stores' vectors to "
                                               "their own table in 12 bits (no model, no re-embedding).")] = False,
    as_json: JsonOption = False,
) -> None:
    """Re-embed, in place, every image made with an older preprocessing version, each read with the VOI
    options it was indexed with (--window / --voi: for images indexed before those were recorded); then
    move older stores' vectors (float32, float16 or 12 bits, in the images rows) to a table of their own in
    12 bits (a float32 vector is three eighths the size, and a table of vectors alone is what the page cache
    holds: the ivf-pq re-rank reads it). Safe to interrupt: run it again to finish."""
    from medsearch.api import Medsearch
    from medsearch.cli.main import parse_window
    from medsearch.indexer.frames import ReadOptions
    from medsearch.indexer.pipeline import IndexSettings
    from medsearch.indexer.voi import parse_voi

    with cli_errors(as_json), Medsearch.open(store, model, device, writable=True, precision=precision) as ms:
        options = ReadOptions(window=parse_window(window), voi=parse_voi(voi or "google"))
        settings = IndexSettings(batch_size=batch_size, workers=workers, read_options=options)
        if as_json or not show_progress():
            facts = ms.upgrade(settings, vectors_only)
        else:
            with ProgressBar("moving vectors", "vectors") as update:
                facts = ms.upgrade(settings, vectors_only, update)
    shrunk = SimpleNamespace(**facts["vectors"])
    if as_json:
        print_json(facts)
        return
    if not vectors_only:
        typer.echo(_upgrade_line(facts))
    if not shrunk.converted and not shrunk.vacuumed:
        typer.echo("no older vectors to move: every vector is in the vectors table")
        return
    typer.echo(f"moved {plural(shrunk.converted, 'older vector')} to the vectors table in 12 bits"
               + (f"; the database went from {shrunk.bytes_before / 2**20:.1f} to {shrunk.bytes_after / 2**20:.1f} MiB"
                  if shrunk.vacuumed else f"; {shrunk.vacuum_note}" if shrunk.vacuum_note else ""))


def _upgrade_line(facts: dict[str, Any]) -> str:
    """What ``upgrade`` re-embedded, or that nothing needed it."""
    done = (facts["reembedded"], facts["failed"], facts["missing"], facts["left"])
    if facts["from_version"] == facts["to_version"] and not any(done):
        return f"nothing to upgrade: every image is at preprocessing version {facts['to_version']}"
    return (f"upgraded {facts['from_version']} -> {facts['to_version']}: re-embedded {plural(done[0], 'file')}, "
            f"failed {done[1]}, missing {done[2]}, left {done[3]}")


def preview(
    target: Annotated[str, typer.Argument(help="An image file, or an image id in the store.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The PNG to write.")],
    store: StoreOption = DEFAULT_STORE,
    model: ModelOption = None,
    device: DeviceOption = "auto",
    window: WindowOption = None,
    voi: VoiOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write the exact model input (padded square, after the VOI, at the model's size) as a PNG: 16-bit
    grey, or 8-bit RGB for colour. An id or indexed file is read as the store read it; another file with
    --window / --voi, else as the store reads most of its images."""
    from medsearch.api import Medsearch
    from medsearch.indexer.preview import model_input, preview_png, to_png

    with cli_errors(as_json), Medsearch.open(store, model, device) as ms:
        preprocessor = ms.embedder.preprocessor
        image_id = _stored_id(ms.store, target)
        if image_id is not None and window is None and voi is None:
            data = preview_png(ms.store, preprocessor, image_id)
        else:
            options = _file_options(ms.store, window, voi)
            data = to_png(model_input(Path(target).expanduser(), options, preprocessor), preprocessor)
        output.write_bytes(data)
    if as_json:
        print_json({"output": str(output), "size": preprocessor.size, "bytes": len(data)})
    else:
        typer.echo(f"wrote {output} ({preprocessor.size} x {preprocessor.size})")


def _stored_id(store, target: str) -> int | None:  # type: ignore[no-untyped-def]
    """The id of ``target``: an id, or the first frame of an indexed file; None for another file."""
    from medsearch.storage.pixel_records import id_of_path

    path = Path(target).expanduser()
    if not path.exists() and target.isdigit():
        return int(target)
    return id_of_path(store, path)


def _file_options(store, window: str | None, voi: str | None):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from medsearch.cli.main import parse_window
    from medsearch.indexer.read_back import store_read_options
    from medsearch.indexer.voi import parse_voi

    options = store_read_options(store)
    if window is not None:
        options = replace(options, window=parse_window(window))
    return replace(options, voi=parse_voi(voi)) if voi is not None else options


def register(app: typer.Typer) -> None:
    """Add ``upgrade`` and ``preview`` to the ``medsearch`` app."""
    app.command()(upgrade)
    app.command()(preview)
