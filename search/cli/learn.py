"""``medsearch probe train/apply/list``, ``medsearch split`` and ``medsearch audit``: cohorts for machine
learning (``medsearch.learn``)."""

from __future__ import annotations

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

probe_app = typer.Typer(help="Few-shot probes: logistic regression on the stored vectors of labelled images.",
                        no_args_is_help=True)

SELECTION_HELP = "ids:1,2,3, cohort:NAME, field:NAME (value 1/true) or a where filter. Repeatable (a union)."
NameArgument = Annotated[str, typer.Argument(help="The probe's name.")]


@probe_app.command("train")
def probe_train(
    name: NameArgument,
    positives: Annotated[list[str], typer.Option("--positives", help="Positive images: " + SELECTION_HELP)],
    negatives: Annotated[list[str] | None, typer.Option(
        "--negatives", help="Negative images (default: every other image): " + SELECTION_HELP)] = None,
    prompt: Annotated[str | None, typer.Option(help="Text for the zero-shot AUC beside it (default: NAME).")] = None,
    group_by: Annotated[str, typer.Option(help="Cross-validate by: patient, study, series or COLUMN.")] = "patient",
    folds: Annotated[int, typer.Option(min=2, help="Cross-validation folds (fewer if there are few groups).")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the folds.")] = 0,
    store: StoreOption = DEFAULT_STORE,
    model: ModelOption = None,
    device: DeviceOption = "auto",
    as_json: JsonOption = False,
) -> None:
    """Train a probe, cross-validated by patient: AUC with a 95 % interval, and the zero-shot AUC beside it."""
    from medsearch.api import Medsearch

    with cli_errors(as_json), Medsearch.open(store, model, device, writable=True) as ms:
        require_extra("sklearn")
        report = ms.learning.train_probe(name, positives, negatives or (), prompt=prompt, group_by=group_by,
                                         folds=folds, seed=seed)
        if as_json:
            print_json(report)
            return
        typer.echo(f"probe {name}: {report['positives']} positives, {report['negatives']} negatives, "
                   f"{plural(report['groups'], f'{group_by} group')}, {plural(report['folds'], 'fold')}")
        typer.echo(f"  cross-validated AUC {_auc(report, 'cv_auc')}")
        typer.echo(f"  zero-shot AUC       {_auc(report, 'zero_shot_auc')}  (prompt {report['zero_shot_prompt']!r})")


def _auc(report: dict[str, Any], key: str) -> str:
    low, high = report[f"{key}_ci"]
    return f"{report[key]:.3f} (95% CI {low:.3f}-{high:.3f})"


@probe_app.command("apply")
def probe_apply(
    name: NameArgument,
    where: Annotated[list[str] | None, typer.Option("--where", help="Score only these images.")] = None,
    save_as: Annotated[str | None, typer.Option(help="Field to save the probabilities in (default: NAME).")] = None,
    store: StoreOption = DEFAULT_STORE,
    as_json: JsonOption = False,
) -> None:
    """Score images with a probe; the probabilities become a field for --where, cohorts and the page."""
    from medsearch.api import Medsearch

    with cli_errors(as_json), Medsearch.open(store, writable=True) as ms:
        done = ms.learning.apply_probe(name, [f"where:{w}" for w in where or ()], save_as)
        if as_json:
            print_json(done)
            return
        typer.echo(f"probe {name}: scored {plural(done['images'], 'image')} into field {done['field']!r} "
                   f"({done['at_least_0.5']} at p >= 0.5); e.g. --where \"{done['field']} >= 0.5\"")


@probe_app.command("list")
def probe_list(store: StoreOption = DEFAULT_STORE, as_json: JsonOption = False) -> None:
    """The saved probes with their cross-validated and zero-shot AUCs."""
    from medsearch.api import Medsearch

    with cli_errors(as_json), Medsearch.open(store) as ms:
        found = ms.learning.probes()
        if as_json:
            print_json({"probes": found})
            return
        for item in found:
            typer.echo(f"{item['name']}: AUC {_auc(item, 'cv_auc')}, zero-shot {item['zero_shot_auc']:.3f}, "
                       f"{item['positives']}+/{item['negatives']}-, {item['model']}")
        if not found:
            typer.echo("no probes")


def split(
    name: Annotated[str, typer.Argument(help="The field that will hold each image's split name.")],
    by: Annotated[str, typer.Option(help="Never split a group: patient, study, series or COLUMN.")] = "patient",
    ratios: Annotated[str, typer.Option(help="Shares of the splits, e.g. 70/15/15 or 80/20.")] = "70/15/15",
    names: Annotated[str | None, typer.Option(
        help="Split names, comma-separated (default train,validation,test or train,test).")] = None,
    stratify: Annotated[str | None, typer.Option(help="Keep this field's shares alike in every split.")] = None,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same split.")] = 0,
    cohort: Annotated[str | None, typer.Option(help="Split only this cohort's members.")] = None,
    missing: Annotated[str, typer.Option(
        help="Images without a --by value: refuse (say how many), leave-out (no split value), or alone (a group "
             "each).")] = "refuse",
    store: StoreOption = DEFAULT_STORE,
    as_json: JsonOption = False,
) -> None:
    """Split images by patient (or any group), stratified and seeded, into a field usable in --where."""
    from medsearch.api import Medsearch
    from medsearch.learn.split import parse_ratios

    with cli_errors(as_json), Medsearch.open(store, writable=True) as ms:
        made = ms.learning.split(name, by, parse_ratios(ratios), names.split(",") if names else None, stratify, seed,
                                 (f"cohort:{cohort}",) if cohort else (), missing)
        if as_json:
            print_json(made)
            return
        for split_name, count in made["images"].items():
            typer.echo(f"{split_name}: {plural(count, 'image')}, {plural(made['groups'][split_name], f'{by} group')}")
        typer.echo(f"saved as field {name!r}: --where \"{name} = '{made['names'][0]}'\"")
        if made["without_group"]:
            what = "left out (no split value)" if missing == "leave-out" else f"each in a {by} group of its own"
            typer.echo(f"{plural(made['without_group'], 'image')} without a {by!r} value: {what}", err=True)


def audit(
    cohort: Annotated[str | None, typer.Argument(help="Audit this cohort's members (default: the whole store).")
                      ] = None,
    split_field: Annotated[str, typer.Option(help="The field holding each image's split.")] = "split",
    patient: Annotated[str, typer.Option(help="What a patient is: patient (keyed hash) or a COLUMN.")] = "patient",
    k: Annotated[int, typer.Option("-k", min=1, help="Neighbours looked at per image.")] = 10,
    threshold: Annotated[float | None, typer.Option(
        help="A cosine alone for near-duplicates, no pixel check (default: calibrated).")] = None,
    samples: Annotated[int, typer.Option(min=1, help="Images copied to calibrate the threshold.")] = 64,
    seed: Annotated[int, typer.Option(help="Seed of the calibration.")] = 0,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="Write the pairs to review to this CSV.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Draw the calibration's score distributions to this PNG.")] = None,
    store: StoreOption = DEFAULT_STORE,
    model: ModelOption = None,
    device: DeviceOption = "auto",
    as_json: JsonOption = False,
) -> None:
    """Leakage audit: near-duplicates, the same patient and identical files across splits."""
    from medsearch.api import Medsearch
    from medsearch.learn import audit as auditing

    with cli_errors(as_json), Medsearch.open(store, model, device) as ms:
        if plot:
            require_extra("matplotlib")  # before the audit, whose findings would be lost
        found = ms.learning.audit(split_field, (f"cohort:{cohort}",) if cohort else (), patient=patient, k=k,
                                  threshold=threshold, seed=seed, samples=samples)
        if csv_path:
            auditing.write_pairs_csv(found, csv_path)
        if plot:
            auditing.plot_scores(found, plot)
        if as_json:
            print_json(auditing.as_dict(found))
            return
        _audit_text(found, auditing)


def _audit_text(found: Any, auditing: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    typer.echo(f"audit of {found.split_field!r}: {plural(found.images, 'image')}, "
               f"{', '.join(f'{s} {n}' for s, n in found.splits.items())}")
    calibration = found.calibration
    if calibration is not None:
        typer.echo(f"threshold cosine {found.threshold:.4f}, then pixel similarity {calibration.pixel_threshold:.4f} "
                   f"(Youden's J {calibration.youden_j:.3f}: {calibration.true_positive_rate:.1%} of "
                   f"{len(calibration.copies)} synthetic copies pass both, "
                   f"{calibration.false_positive_rate:.2%} of {len(calibration.different_patients)} "
                   "nearest neighbours of other patients)")
        _distribution("cosine", calibration.copies, calibration.different_patients, auditing)
        _distribution("pixels", calibration.copy_pixels, calibration.different_patient_pixels, auditing)
    table = Table(title="pairs across splits")
    for column in ("kind", "cosine", "pixels", "a", "b"):
        table.add_column(column, overflow="fold")
    for pair in found.pairs[:50]:
        pixels = "-" if pair["pixels"] is None else f"{pair['pixels']:.4f}"
        table.add_row(pair["kind"], f"{pair['cosine']:.4f}", pixels,
                      f"{pair['id_a']} [{pair['split_a']}] {pair['path_a']}",
                      f"{pair['id_b']} [{pair['split_b']}] {pair['path_b']}")
    Console().print(table)
    for leak in found.same_patient[:50]:
        where = ", ".join(f"{s} ({n})" for s, n in leak["splits"].items())
        typer.echo(f"same patient {leak['patient'][:16]} in {where}")
    summary = found.summary()
    typer.echo(f"{plural(summary['near_duplicates'], 'near-duplicate pair')}, "
               f"{plural(summary['exact_duplicates'], 'identical file')}, "
               f"{plural(summary['same_patient'], 'patient')} in two splits")
    if found.without_patient:
        typer.echo(f"{plural(found.without_patient, 'image')} without a patient value: not checked for the same "
                   "patient across splits", err=True)


def _distribution(score: str, copies: list[float], others: list[float], auditing: Any) -> None:
    """A text histogram of one score's two calibration distributions."""
    import numpy as np

    bins = np.linspace(min(copies + others), 1.0, 11)
    typer.echo(f"{score + ' range':18}  copies  nearest neighbours of other patients")
    for n, (a, b) in enumerate(zip(auditing.histogram(copies, bins), auditing.histogram(others, bins), strict=True)):
        typer.echo(f"{bins[n]:.3f}-{bins[n + 1]:.3f}  {a:8d}  {b:8d}")


def register(app: typer.Typer) -> None:
    app.add_typer(probe_app, name="probe")
    app.command()(split)
    app.command()(audit)
