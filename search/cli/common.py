"""What every command shares: the options, the error translation and JSON/table output."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import import_module
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from medsearch.cli.results import print_json as print_json  # the commands import it from here
from medsearch.cli.results import show_error
from medsearch.errors import MedsearchError, not_utf8
from medsearch.storage.failures import store_failure

StoreOption = Annotated[Path, typer.Option("--store", envvar="MEDSEARCH_STORE",
                                           help="Store directory.")]
ModelOption = Annotated[str | None, typer.Option(
    "--model", help="Hub id or local folder. Default: the store's model, else MEDSEARCH_MODEL, else "
    "google/medsiglip-448.")]
DeviceOption = Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")]
PrecisionOption = Annotated[str, typer.Option(
    "--precision", help="auto (float32 on a CPU, bf16/fp16 on a GPU), fast (CPU: bfloat16 where the CPU has it, "
    "else int8; cosine ~0.9997-0.9999 to float32), float32, bfloat16, float16 or int8.")]
LikeOption = Annotated[list[str] | None, typer.Option(
    "--like", help="Another positive part: TEXT, image:PATH or id:N, optionally @WEIGHT.")]
UnlikeOption = Annotated[list[str] | None, typer.Option("--unlike", help="A negative part, same form.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object for scripts.")]
WindowOption = Annotated[str | None, typer.Option(
    help="DICOM window: CENTER,WIDTH or lung, mediastinum, bone, brain, soft-tissue. Default: the file's.")]
WorkersOption = Annotated[int, typer.Option(help="Decoding processes; -1 picks from the cores, 0 decodes inline.")]
ShowFieldsOption = Annotated[str | None, typer.Option(
    "--show-fields", help="Sidecar/label fields as table columns, comma-separated (e.g. site,age); "
    "'all' for every field. Default: the first few, compactly.")]
PathsOption = Annotated[bool, typer.Option("--paths", help="Print only the paths, one per line (for piping).")]
ServerOption = Annotated[str | None, typer.Option(
    "--server", envvar="MEDSEARCH_SERVER", help="Ask a running `medsearch serve` at this URL (fast: no model "
    "is loaded here); the token is MEDSEARCH_API_TOKEN.")]
LocalOption = Annotated[bool, typer.Option(
    "--local", envvar="MEDSEARCH_LOCAL", help="Answer in this process even when a `medsearch serve` runs for the "
    "store (by default such a server is asked: same answer, no model loaded here).")]
DEFAULT_STORE = Path("medsearch-store")
IRREGULAR_PLURALS = {"series": "series", "study": "studies", "patient": "patients", "analysis": "analyses"}


def plural(count: int, noun: str) -> str:
    """``"1 image"``, ``"3 images"``, ``"4 series"``, ``"2 studies"``."""
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {IRREGULAR_PLURALS.get(noun, noun + 's')}"


F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def cli_errors(as_json: bool) -> Iterator[None]:
    """Turn medsearch's errors into one line (or the JSON error shape) and the error's exit code."""
    try:
        yield
    except MedsearchError as error:
        _fail(error, error.exit_code, as_json)
    except ModuleNotFoundError as error:
        missing = missing_extra(error)
        if missing is None:
            raise
        _fail(missing, missing.exit_code, as_json)
    except UnicodeEncodeError:  # a lone surrogate: bytes that are not UTF-8 in an argument
        _fail(not_utf8(), 2, as_json)
    except FileNotFoundError as error:
        wrapped = MedsearchError(str(error).strip("'\""))
        wrapped.code = "not_found"
        _fail(wrapped, 6, as_json)
    except Exception as error:
        translated = store_failure(error)
        if translated is None:
            raise
        _fail(translated, translated.exit_code, as_json)
    except KeyboardInterrupt:
        typer.echo("interrupted: every batch finished before the interrupt is kept", err=True)
        raise typer.Exit(130) from None


EXTRAS = {"matplotlib": "eval", "sklearn": "eval", "uvicorn": "server", "fastapi": "server",
          "multipart": "server", "python_multipart": "server", "httpx": "pacs", "psycopg": "postgres"}
"""The optional extra (pyproject.toml) that installs each optional top-level module."""


def missing_extra(error: ModuleNotFoundError, extra: str | None = None) -> MedsearchError | None:
    """The one-line error naming the extra that installs ``error``'s module, or None for a module that
    no extra provides (a real bug, left to surface)."""
    module = (error.name or "").split(".")[0]
    extra = extra or EXTRAS.get(module)
    if extra is None:
        return None
    missing = MedsearchError(f"this needs {module}, from the {extra} extra: pip install \"medsearch[{extra}]\"")
    missing.code = "missing_extra"
    return missing


def require_extra(module: str, extra: str | None = None) -> None:
    """Import ``module`` now (before any work whose result would be lost), or raise the error naming its
    extra. Raises MedsearchError (code ``missing_extra``)."""
    try:
        import_module(module)
    except ModuleNotFoundError as error:
        missing = missing_extra(error, extra)
        if missing is None:
            raise
        raise missing from None


def _fail(error: MedsearchError, code: int, as_json: bool) -> None:
    show_error(error, as_json)
    raise typer.Exit(code)


def show_progress() -> bool:
    return sys.stderr.isatty()


class ProgressBar:
    """A rich progress bar with ``unit`` per second; entering it gives ``update(done, total)``. Shown only
    where ``show_progress()`` (callers skip it for --json)."""

    def __init__(self, title: str, unit: str = "files") -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.unit = unit
        rate = TextColumn("{task.fields[rate]}")
        self.bar = Progress(TextColumn(title), BarColumn(), MofNCompleteColumn(), rate, TimeRemainingColumn(),
                            transient=True)

    def __enter__(self) -> Callable[[int, int], None]:
        self.bar.__enter__()
        task = self.bar.add_task("", total=None, rate="")

        def update(done: int, total: int) -> None:
            speed = self.bar.tasks[task].speed
            self.bar.update(task, completed=done, total=total, rate=f"{speed:.1f} {self.unit}/s" if speed else "")

        return update

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)  # type: ignore[arg-type]
