"""``medsearch classify`` (zero-shot labels) and ``medsearch evaluate`` (prompts against known labels)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from medsearch.cli.common import (
    DEFAULT_STORE,
    DeviceOption,
    JsonOption,
    ModelOption,
    StoreOption,
    cli_errors,
    plural,
    print_json,
    require_extra,
)
from medsearch.cli.metadata import KeyOption, RootOption

LabelsOption = Annotated[str | None, typer.Option("--labels", help="Labels separated by ';', one prompt each.")]
LabelsFileOption = Annotated[Path | None, typer.Option(
    "--labels-file", help="TOML: a [table] per label with prompts = [...] (a prompt ensemble).")]
LabelSetOption = Annotated[str | None, typer.Option(
    "--labels-set", help="A built-in label set: cxr-findings or skin-lesions.")]


def label_set(labels: str | None, labels_file: Path | None, labels_set: str | None) -> Any:
    """The one label set the options name. Raises InvalidQuery."""
    from medsearch.errors import InvalidQuery
    from medsearch.labels.labelsets import load_label_set, parse_label_list

    given = [option for option in (labels, labels_file, labels_set) if option]
    if len(given) != 1:
        raise InvalidQuery("give exactly one of --labels, --labels-file or --labels-set")
    if labels:
        return parse_label_list(labels)
    return load_label_set(labels_file or labels_set)  # type: ignore[arg-type]


def classify(
    targets: Annotated[list[str] | None, typer.Argument(help="Image files or stored image ids.")] = None,
    labels: LabelsOption = None,
    labels_file: LabelsFileOption = None,
    labels_set: LabelSetOption = None,
    all_images: Annotated[bool, typer.Option("--all", help="Every image in the store.")] = False,
    where: Annotated[list[str] | None, typer.Option(
        "--where", help="Classify the stored images matching this.")] = None,
    exclusive: Annotated[bool, typer.Option(help="Labels exclude each other: softmax over the labels.")] = False,
    save_as: Annotated[str | None, typer.Option(help="Store the scores as fields NAME.LABEL for --where.")] = None,
    store: StoreOption = DEFAULT_STORE,
    model: ModelOption = None,
    device: DeviceOption = "auto",
    as_json: JsonOption = False,
) -> None:
    """Zero-shot labels: per-label probabilities from the model's sigmoid, and a findings summary."""
    from medsearch.api import Medsearch
    from medsearch.labels.domain import modality_warning
    from medsearch.labels.present import labels_line, prompts_searched
    from medsearch.labels.zeroshot import NOTE

    with cli_errors(as_json), Medsearch.open(store, model, device, writable=bool(save_as)) as ms:
        chosen = label_set(labels, labels_file, labels_set)
        results = ms.classify(chosen, targets or [], all_images=all_images, where=where or (),
                                  exclusive=exclusive, save_as=save_as)
        searched = prompts_searched(ms.english, chosen)
        warning = modality_warning(ms.store, chosen, [r.id for r in results if r.id is not None])
        if as_json:
            print_json({"labels": list(chosen.names), "searched_as": searched, "exclusive": exclusive, "note": NOTE,
                        "warning": warning, "results": [asdict(r) for r in results]})
            return
        if labels_line(chosen, searched):
            typer.echo(labels_line(chosen, searched))
        shown = chosen.shown
        for result in results:
            scores = "  ".join(f"{shown[name]} {p:.3f}" for name, p in result.probabilities.items())
            reason = _shown_reason(result.review_reason, shown)
            flag = f"  [needs human review: {reason}]" if result.needs_review else ""
            present = ", ".join(shown[name] for name in result.present) or "none"
            typer.echo(f"{result.path}: present: {present}{flag}\n    {scores}")
        typer.echo(NOTE)
        if warning:
            typer.echo(f"warning: {warning}", err=True)


def _shown_reason(reason: str | None, shown: dict[str, str]) -> str:
    """A review reason ("uncertain: a, b") with the labels' display names."""
    head, colon, names = (reason or "").partition(": ")
    if head != "uncertain" or not colon:
        return reason or ""
    return f"{head}: {', '.join(shown.get(name, name) for name in names.split(', '))}"


def evaluate(
    truth: Annotated[Path | None, typer.Option(help="CSV: a key column (as import-metadata: path, file, filename, "
                                               "sop_instance_uid, or --key) and a 0/1 column per label.")] = None,
    key: KeyOption = None,
    root: RootOption = None,
    truth_fields: Annotated[str | None, typer.Option(
        help="Instead of --truth: imported 0/1 fields, FIELD or FIELD=LABEL, comma-separated.")] = None,
    labels: LabelsOption = None,
    labels_file: LabelsFileOption = None,
    labels_set: LabelSetOption = None,
    truth_from_reports: Annotated[bool, typer.Option(
        "--truth-from-reports", help="Instead of --truth: each image's study's report labels (positive vs "
        "negative; uncertain left out, counted); AUC with a 95 % interval resampling patients. Default label "
        "set: cxr-findings.")] = False,
    group_by: Annotated[str, typer.Option(help="With --truth-from-reports: the group the interval resamples "
                                          "(patient, study or any column).")] = "patient",
    rounds: Annotated[int, typer.Option(help="With --truth-from-reports: bootstrap rounds.")] = 1000,
    seed: Annotated[int, typer.Option(help="With --truth-from-reports: the bootstrap's seed.")] = 0,
    k: Annotated[int, typer.Option("-k", "--k", help="k for precision@k and recall@k.")] = 10,
    plot: Annotated[Path | None, typer.Option(help="Draw the ROC curves (and AUC intervals) to this PNG.")] = None,
    store: StoreOption = DEFAULT_STORE,
    model: ModelOption = None,
    device: DeviceOption = "auto",
    as_json: JsonOption = False,
) -> None:
    """Measure prompts against known labels: ROC AUC per label, retrieval precision/recall@k and mAP; or,
    with --truth-from-reports, the AUC table against your own archive's report labels."""
    from medsearch.api import Medsearch
    from medsearch.errors import InvalidQuery
    from medsearch.labels.evaluate import plot_roc

    with cli_errors(as_json), Medsearch.open(store, model, device) as ms:
        if plot:
            require_extra("matplotlib")  # before the evaluation, whose figures would be lost
        if truth_from_reports:
            from medsearch.cli.report_truth import evaluate_reports

            if truth or truth_fields:
                raise InvalidQuery("give the truth as one of --truth, --truth-fields or --truth-from-reports")
            chosen = label_set(labels, labels_file, labels_set or (None if labels or labels_file else "cxr-findings"))
            evaluate_reports(ms, chosen, group_by, rounds, seed, plot, as_json)
            return
        fields = [name.strip() for name in (truth_fields or "").split(",") if name.strip()]
        chosen = label_set(labels, labels_file, labels_set)
        report = ms.evaluate(truth, chosen, k, key=key, root=root, truth_fields=fields)
        if plot:
            plot_roc(report, plot)
        data = asdict(report)
        data.pop("curves")
        if as_json:
            print_json(data)
            return
        _table(report, chosen.shown)


def _table(report: Any, shown: dict[str, str]) -> None:
    from rich.console import Console
    from rich.table import Table

    def fmt(value: Any) -> str:
        return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)

    table = Table(title=f"zero-shot evaluation on {plural(report.images, 'image')}")
    for column in ("label", "positives", "negatives", "unknown", "AUC", f"P@{report.k}", f"R@{report.k}", "AP"):
        table.add_column(column)
    for name, f in report.labels.items():
        table.add_row(shown.get(name, name), str(f["positives"]), str(f["negatives"]), str(f["unknown"]),
                      fmt(f["auc"]), fmt(f["precision_at_k"]), fmt(f["recall_at_k"]), fmt(f["average_precision"]))
    Console().print(table)
    typer.echo(f"mAP {fmt(report.mean_average_precision)}; image-to-image label precision@{report.k} "
               f"{fmt(report.image_label_precision_at_k)}")
    unknown = {name: f["unknown"] for name, f in report.labels.items() if f["unknown"]}
    if unknown:
        counts = ", ".join(f"{shown.get(name, name)} {plural(n, 'image')}" for name, n in unknown.items())
        typer.echo(f"unknown truth (blank, NA or -1) left out of that label's figures: {counts}", err=True)
    if report.missing:
        verb = "names" if len(report.missing) == 1 else "name"
        typer.echo(f"{plural(len(report.missing), 'truth row')} {verb} no image in the store", err=True)


def register(app: typer.Typer) -> None:
    app.command()(classify)
    app.command()(evaluate)
