"""``medsearch evaluate --truth-from-reports``: the AUC table against report labels, as text or JSON."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer
from medsearch.cli.common import plural, print_json


def evaluate_reports(ms: Any, labels: Any, group_by: str, rounds: int, seed: int, plot: Path | None,
                     as_json: bool) -> None:
    """Compute, plot when asked, and print the table (``ms.learning.evaluate_reports``). Raises InvalidQuery."""
    from medsearch.labels.report_truth import plot_aucs

    report = ms.learning.evaluate_reports(labels, group_by, rounds, seed)
    if plot:
        plot_aucs(report, plot)
    if as_json:
        data = asdict(report)
        data.pop("curves")
        print_json(data)
        return
    table(report, labels.shown)


def table(report: Any, shown: dict[str, str]) -> None:
    """The table the model card shows: finding, AUC with its interval (CI), and the counts behind it:
    report-positive (pos) and report-negative (neg) images, uncertain ones left out, and patients."""
    from rich.console import Console
    from rich.table import Table

    title = (f"zero-shot AUC against report labels: {plural(report.images, 'image')} of "
             f"{plural(report.patients, report.group_by if report.group_by != 'patient' else 'patient')}")
    grid = Table(title=title)
    grid.add_column("finding")
    for column in ("AUC", f"{report.level:.0%} CI"):
        grid.add_column(column, no_wrap=True)
    for column in ("pos", "neg", "uncertain", report.group_by + "s"):
        grid.add_column(column, justify="right")
    for name, f in report.findings.items():
        auc = "-" if f["auc"] is None else f"{f['auc']:.3f}"
        interval = "-" if f["auc_low"] is None else f"{f['auc_low']:.3f}-{f['auc_high']:.3f}"
        grid.add_row(shown.get(name, name), auc, interval, str(f["positives"]), str(f["negatives"]),
                     str(f["uncertain"]), str(f["patients"]))
    Console().print(grid)
    for name, f in report.findings.items():
        if f["note"]:
            typer.echo(f"{shown.get(name, name)}: {f['note']}", err=True)
    typer.echo(f"uncertain report labels are left out of the AUC; the interval resamples whole "
               f"{report.group_by}s ({report.rounds} rounds, seed {report.seed}). Model scores, not a diagnosis.")
