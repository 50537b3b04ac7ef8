"""How ``--help`` reads: plain text (no Rich markup, so ``[table]`` in a help string stays as written),
option values named as click names them (``PATH``, ``TEXT``, ``INTEGER``; a list option's element type),
``-h`` beside ``--help`` and ``--version``.

Typer 0.29 writes value types as ``<path>``, ``<list[str]>``; ``plain_types`` rewrites them, through the
one method Typer formats them with (``_TyperParameter.display_type``)."""

from __future__ import annotations

import re
from typing import Any

import typer

CONTEXT = {"help_option_names": ["-h", "--help"]}
"""``context_settings`` of the app: ``-h`` is ``--help``."""

NAMES = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "path": "PATH", "bool": "BOOLEAN", "file": "FILE",
         "directory": "DIRECTORY", "datetime": "DATETIME"}


def plain_type(label: str) -> str:
    """``"<list[Path]>"`` -> ``"PATH"``, ``"<int>"`` -> ``"INTEGER"``; anything else upper-cased."""
    bare = label.strip("<>")
    inner = re.fullmatch(r"list\[(.+)\]", bare)
    bare = inner.group(1) if inner else bare
    return NAMES.get(bare.lower(), bare.upper())


def plain_types() -> None:
    """Make Typer name option values in click's words (once; idempotent)."""
    from typer.core import _TyperParameter

    original = _TyperParameter.display_type
    if getattr(original, "plain", False):
        return

    def display_type(self: Any, ctx: Any) -> str:
        return plain_type(original(self, ctx))

    display_type.plain = True  # type: ignore[attr-defined]
    _TyperParameter.display_type = display_type  # type: ignore[method-assign]


def version() -> str:
    """The installed medsearch version, or ``unknown`` from a source tree that was never installed."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("medsearch")
    except PackageNotFoundError:
        return "unknown"


def show_version(value: bool) -> None:
    """The ``--version`` callback: print ``medsearch VERSION`` and stop."""
    if value:
        typer.echo(f"medsearch {version()}")
        raise typer.Exit()
