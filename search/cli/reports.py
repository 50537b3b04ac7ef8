"""``medsearch reports import FILE.csv`` (reports in, labelled by the report labeller) and
``medsearch reports info`` (how many studies have a report, and the findings their labels name)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from medsearch.cli.common import DEFAULT_STORE, JsonOption, StoreOption, cli_errors, plural, print_json

reports_app = typer.Typer(help="Radiology reports: import them (CSV; DICOM SRs are read while indexing), "
                               "then filter with --where \"report.FINDING = 'positive'\" or search with --report.",
                          no_args_is_help=True)

KeyChoice = Annotated[str | None, typer.Option(
    "--key", help="The key column's kind: study_uid, accession or path. Default: the first present.")]
KeepTextOption = Annotated[bool, typer.Option(
    "--keep-report-text", help="Store the report text itself (PHI-prone). Default: only the labels and the "
                               "de-identified sentences.")]
PatientKeyFile = Annotated[Path | None, typer.Option(
    "--patient-key", help="The key file the images were indexed with (accession numbers are hashed with it); "
                          "default: MEDSEARCH_PATIENT_KEY, else the store's own.")]
LabelSetChoice = Annotated[str, typer.Option(
    "--label-set", help="The findings to read: a built-in label set (cxr-findings) or a label-set TOML file.")]


@reports_app.command("import")
def import_reports(
    csv_file: Annotated[Path, typer.Argument(help="CSV: a key column (study_uid, accession or path) and a "
                                                  "report column (report, report_text or text).")],
    key: KeyChoice = None,
    keep_report_text: KeepTextOption = False,
    label_set: LabelSetChoice = "cxr-findings",
    patient_key: PatientKeyFile = None,
    store: StoreOption = DEFAULT_STORE,
    as_json: JsonOption = False,
) -> None:
    """Import a CSV of radiology reports, one row per study: each is labelled positive / negative /
    uncertain per finding, and re-importing a study replaces its report. Bad rows are listed by line and
    left out; a bad file stores nothing."""
    from medsearch.api import Medsearch
    from medsearch.storage.patient_key import read_key_file

    with cli_errors(as_json), Medsearch.open(store, writable=True) as ms:
        secret = read_key_file(patient_key) if patient_key else None
        summary = ms.import_reports(csv_file, key=key, keep_text=keep_report_text, label_set=label_set,
                                    patient_key=secret)
    if as_json:
        print_json(summary.as_dict())
        return
    _show(summary)


def _show(summary: Any) -> None:
    typer.echo(f"{plural(summary.stored, 'report')} stored ({summary.replaced} replaced) from "
               f"{plural(summary.rows, 'row')}, key {summary.key_column} ({summary.key}); "
               + ("text kept" if summary.kept_text else "text not kept (labels and de-identified sentences only)"))
    for finding, counts in summary.labels.items():
        typer.echo(f"  report.{finding}: " + ", ".join(f"{polarity} {n}" for polarity, n in counts.items()))
    if summary.bad:
        typer.echo(f"{plural(summary.bad, 'bad row')} left out:", err=True)
        for row in summary.bad_rows[:20]:
            typer.echo(f"  line {row['line']}: {row['reason']}", err=True)


@reports_app.command("info")
def info(store: StoreOption = DEFAULT_STORE, as_json: JsonOption = False) -> None:
    """How many studies have a report, and the report.FINDING fields their labels give."""
    from medsearch.api import Medsearch

    with cli_errors(as_json), Medsearch.open(store) as ms:
        facts = ms.reports.summary()
    if as_json:
        print_json(facts)
        return
    typer.echo(f"{plural(facts['reports'], 'study')} with a report; fields: "
               + (", ".join(f"report.{f}" for f in facts["findings"]) or "-"))


def register(app: typer.Typer) -> None:
    """Add ``reports`` to the ``medsearch`` app."""
    app.add_typer(reports_app, name="reports")
