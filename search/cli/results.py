"""How ``search`` and ``similar`` print their results: a table (with the group and chosen fields), the
paths alone (one per line, for piping), or one JSON object; series and study results as their own table;
and an error as one line (or its JSON shape). Typer is not imported here: the fast client
(``medsearch.cli.fast``) prints through these same functions as the full CLI."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from medsearch.errors import MedsearchError, error_payload
from medsearch.language.present import fields, header
from medsearch.language.translator import Translation
from medsearch.query.spec import QuerySpec

SHOWN_METADATA = ("modality", "body_part", "study_date", "frame_number")
FIELDS_SHOWN = 4
"""Sidecar/label fields shown in the table when no ``--show-fields`` are chosen (then ``+N more``)."""

ANSI = re.compile(r"\033\[[;?0-9]*[a-zA-Z]")
"""Terminal control sequences, left out of what is written to anything but a terminal (as click does)."""


def echo(text: object, err: bool = False) -> None:
    """``text`` and a newline on stdout (or stderr), flushed, as ``typer.echo`` writes it."""
    stream = sys.stderr if err else sys.stdout
    line = str(text)
    if not stream.isatty():
        line = ANSI.sub("", line)
    stream.write(line + "\n")
    stream.flush()


def print_json(data: Any) -> None:
    echo(json.dumps(data, indent=2, default=str))


def show_error(error: MedsearchError, as_json: bool) -> None:
    """One line ``error: MESSAGE`` on stderr, or the JSON error shape on stdout (``--json``)."""
    if as_json:
        echo(json.dumps(error_payload(error)))
    else:
        echo(f"error: {error}", err=True)


def show_found(spec: QuerySpec, results: list[Any], as_json: bool, translation: Translation | None = None,
               show_fields: str | None = None, paths_only: bool = False) -> None:
    """Print the results of ``spec`` (local objects or a server's dicts): images as ``show_results``, series
    or studies as ``show_units``."""
    title = "similar to" if spec.kind == "similar" else "search"
    query = str(spec.target) if spec.kind == "similar" else spec.text or " ".join(spec.like)
    if spec.is_unit:
        show_units(f"{title}: {query}", results, as_json, fields(translation))
    else:
        show_results(query, results, as_json, title, translation, show_fields, paths_only)


def show_results(query: str, results: list[Any], as_json: bool, title: str, translation: Translation | None = None,
                 show_fields: str | None = None, paths_only: bool = False) -> None:
    """Print ``results`` (``Result`` objects or their ``as_dict`` form) as JSON, paths or a table."""
    rows = [r if isinstance(r, dict) else r.as_dict() for r in results]
    if as_json:
        print_json({"query": query, **fields(translation), "results": rows})
    elif paths_only:
        for row in rows:
            echo(row["path"])
    else:
        results_table(header(f"{title}: {query}", translation) if translation else f"{title}: {query}", rows,
                      field_columns(show_fields))
    if translation and translation.warning() and not as_json:
        echo(translation.warning(), err=True)


def field_columns(show_fields: str | None) -> list[str] | None:
    """The chosen field columns, ``["*"]`` for all, or None for the compact default."""
    if show_fields is None:
        return None
    names = [name.strip() for name in show_fields.split(",") if name.strip()]
    return ["*"] if names == ["all"] else names


def results_table(title: str, rows: list[dict[str, Any]], columns: list[str] | None = None) -> None:
    """A readable table: rank, score, probability, id, path, the group (key and size) when grouped, a few
    metadata fields, and the sidecar/label fields (``columns``, or the first few compactly)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    chosen = sorted({n for row in rows for n in row.get("fields", {})}) if columns == ["*"] else columns
    grouped = any(row.get("group") for row in rows)
    table = Table(title=escape(title), show_lines=False)
    headers = ["rank", "score", "prob", "id", "path", *(["group", "size"] if grouped else []), "metadata",
               *(chosen or ["fields"])]
    for column in headers:
        table.add_column(escape(column), overflow="fold")
    for row in rows:
        cells = [str(row["rank"]), f"{row['score']:.4f}", _prob(row), str(row["id"]), row["path"]]
        if grouped:
            group = row.get("group") or {}
            cells += [str(group.get("key")), str(group.get("size", ""))]
        cells.append(_pairs({k: v for k, v in row["metadata"].items() if k in SHOWN_METADATA and v not in (None, 0)}))
        values = row.get("fields", {})
        cells += [_text(values.get(name)) for name in chosen] if chosen else [_compact(values)]
        table.add_row(*map(escape, cells))
    Console().print(table)
    if not rows:
        echo("no results")


def _prob(row: dict[str, Any]) -> str:
    return "" if row.get("probability") is None else f"{row['probability']:.3f}"


def _text(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _pairs(values: dict[str, Any]) -> str:
    return " ".join(f"{k}={_text(v)}" for k, v in values.items())


def _compact(values: dict[str, Any]) -> str:
    """The first ``FIELDS_SHOWN`` fields as ``name=value``, then ``+N more``."""
    names = sorted(values)
    shown = _pairs({name: values[name] for name in names[:FIELDS_SHOWN]})
    return shown + (f" +{len(names) - FIELDS_SHOWN} more" if len(names) > FIELDS_SHOWN else "")


def show_units(title: str, results: list[Any], as_json: bool, extra: dict[str, Any] | None = None) -> None:
    """Print unit results (``UnitResult``, or their dicts as a server answers them) as a table, or as
    ``{"query": ..., "results": [...]}``."""
    rows = [r if isinstance(r, dict) else r.as_dict() for r in results]
    if as_json:
        print_json({"query": title.split(": ", 1)[-1], **(extra or {}), "results": rows})
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in ("rank", "score", "unit", "size", "modality", "date", "description", "best image", "path"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(str(r["rank"]), f"{r['score']:.4f}", f"{r['unit']} {r['key']}", str(r["size"]),
                      r["modality"] or "", r["study_date"] or "", r["description"] or "", str(r["image_id"]),
                      r["path"])
    Console().print(table)
    if not results:
        echo("no results")
