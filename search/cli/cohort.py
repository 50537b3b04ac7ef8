"""``medsearch cohort ...``: research cohorts with criteria, a funnel, de-duplication, runs and exports."""

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
)

cohort_app = typer.Typer(help="Research cohorts: reproducible, saved sets of images with a funnel and exports.",
                         no_args_is_help=True)

CRITERIA_HELP = ("text:TEXT>=P (model probability), text:TEXT score>=C (cosine), image:PATH>=C or id:N>=C "
                 "(cosine to an example), SUBJECT top N (the N best still in), where:EXPR (metadata). Repeatable.")
UNIT_HELP = ("image, series or study: with series/study the members are the units holding a passing image "
             "(size, modality, date, best image, all image ids), counted and exported one row per unit; "
             "--one-per series instead keeps one image per series.")
NameArgument = Annotated[str, typer.Argument(help="The cohort's name.")]


@cohort_app.command()
def create(
    name: NameArgument,
    include: Annotated[list[str] | None, typer.Option(
        "--include", "-i", help="Keep images passing: " + CRITERIA_HELP)] = None,
    exclude: Annotated[list[str] | None, typer.Option(
        "--exclude", "-x", help="Drop images passing: " + CRITERIA_HELP)] = None,
    where: Annotated[list[str] | None, typer.Option("--where", help="Metadata filter, e.g. \"modality in ('CR','DX')\" "
                                                    "or 'cxr.pleural_effusion >= 0.5'. Repeatable.")] = None,
    one_per: Annotated[str | None, typer.Option(
        help="Keep the best image per study, series, patient or COLUMN (members stay images).")] = None,
    near_duplicates: Annotated[float | None, typer.Option(
        help="Collapse members with cosine above this into the better one (reported).")] = None,
    unit: Annotated[str, typer.Option("--unit", help=UNIT_HELP)] = "image",
    discordant: Annotated[str | None, typer.Option(
        help="Instead of criteria: the images (--unit study: studies) where the zero-shot score of this finding "
             "and the report label disagree, strongest first.")] = None,
    direction: Annotated[str, typer.Option(help="With --discordant: model-positive (report negative, scored "
                                           "high), report-positive (scored low) or both.")] = "both",
    labels_set: Annotated[str | None, typer.Option(
        help="With --discordant: the label set whose prompts score the finding (default cxr-findings).")] = None,
    labels_file: Annotated[Path | None, typer.Option(help="With --discordant: a label set TOML instead.")] = None,
    k: Annotated[int | None, typer.Option("--k", "-k", help="With --discordant: keep the k strongest.")] = None,
    min_disagreement: Annotated[float, typer.Option(
        help="With --discordant: the least disagreement kept, a share of the other report class (0-1).")] = 0.5,
    store: StoreOption = DEFAULT_STORE,
    model: ModelOption = None,
    device: DeviceOption = "auto",
    as_json: JsonOption = False,
) -> None:
    """Create and save a cohort; prints its funnel. Order: all images -> each --where -> each --include ->
    each --exclude -> --one-per -> --near-duplicates. Scores are cosines to the first semantic include.
    With --discordant FINDING: where model and report disagree, scored by how strongly."""
    from medsearch.api import Medsearch
    from medsearch.cohorts.criteria import criteria_searched

    with cli_errors(as_json), Medsearch.open(store, model, device, writable=True) as ms:
        if discordant is not None:
            _check_alone(include, exclude, where, one_per, near_duplicates)
            from medsearch.cli.labels import label_set

            chosen = label_set(None, labels_file, labels_set or (None if labels_file else "cxr-findings"))
            _show(ms.cohorts.create_discordant(name, chosen, discordant, direction, k, min_disagreement, unit),
                  as_json, members=10)
            return
        made = ms.cohorts.create(name, include or [], exclude or [], where or [], one_per, near_duplicates, unit)
        _show({**made, "searched_as": criteria_searched(ms.english, [*(include or []), *(exclude or [])])},
              as_json, members=10)


def _check_alone(*given: Any) -> None:
    """Raises InvalidQuery when criteria are given with --discordant."""
    from medsearch.errors import InvalidQuery

    if any(given):
        raise InvalidQuery("--discordant makes a cohort of its own: give it without --include, --exclude, "
                           "--where, --one-per or --near-duplicates")


@cohort_app.command()
def refresh(name: NameArgument, store: StoreOption = DEFAULT_STORE, model: ModelOption = None,
            device: DeviceOption = "auto", as_json: JsonOption = False) -> None:
    """Re-run a cohort's saved definition on the store as it is now, and save the new members."""
    from medsearch.api import Medsearch

    with cli_errors(as_json), Medsearch.open(store, model, device, writable=True) as ms:
        _show(ms.cohorts.refresh(name), as_json, members=10)


@cohort_app.command()
def show(name: NameArgument, run: Annotated[int | None, typer.Option(help="A run number; default the latest.")] = None,
         store: StoreOption = DEFAULT_STORE, as_json: JsonOption = False) -> None:
    """Show a cohort's manifest, funnel and members."""
    from medsearch.api import Medsearch

    with cli_errors(as_json), Medsearch.open(store) as ms:
        _show(ms.cohorts.show(name, run), as_json, members=None)


@cohort_app.command("list")
def list_(store: StoreOption = DEFAULT_STORE, as_json: JsonOption = False) -> None:
    """List the saved cohorts."""
    from medsearch.api import Medsearch

    with cli_errors(as_json), Medsearch.open(store) as ms:
        found = ms.cohorts.list()
        if as_json:
            print_json({"cohorts": found})
            return
        for item in found:
            noun = "member" if item["unit"] == "image" else item["unit"]
            typer.echo(f"{item['name']}: {plural(item['count'], noun)}, {plural(item['runs'], 'run')}, "
                       f"generation {item['generation']}, created {item['created_at']}")
        if not found:
            typer.echo("no cohorts")


@cohort_app.command()
def delete(name: NameArgument, store: StoreOption = DEFAULT_STORE, as_json: JsonOption = False) -> None:
    """Delete a cohort with all its runs."""
    from medsearch.api import Medsearch

    with cli_errors(as_json), Medsearch.open(store, writable=True) as ms:
        ms.cohorts.delete(name)
        print_json({"deleted": name}) if as_json else typer.echo(f"deleted cohort {name}")


@cohort_app.command()
def diff(name: NameArgument, store: StoreOption = DEFAULT_STORE, as_json: JsonOption = False) -> None:
    """Who joined and who left between the previous run and the latest (after `cohort refresh`)."""
    from medsearch.api import Medsearch

    with cli_errors(as_json), Medsearch.open(store) as ms:
        change = ms.cohorts.diff(name)
        if as_json:
            print_json(change)
            return
        typer.echo(f"{name}: run {change['run']} against run {change['previous_run']}: "
                   f"{len(change['joined'])} joined, {len(change['left'])} left")
        for sign, key in (("+", "joined"), ("-", "left")):
            for member in change[key]:
                typer.echo(f"  {sign} {member.get('key', member.get('id'))} {member['path']}")


@cohort_app.command()
def export(
    name: NameArgument,
    fmt: Annotated[str, typer.Option("--format", help="csv, jsonl, uids (DICOM study/series/SOP) or links.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write; a new folder for links.")],
    columns: Annotated[str, typer.Option(help="Comma-separated metadata columns or fields for csv/jsonl.")] = "",
    copy: Annotated[bool, typer.Option("--copy", help="links: copy the files instead of symlinking.")] = False,
    run: Annotated[int | None, typer.Option(help="A run number; default the latest.")] = None,
    store: StoreOption = DEFAULT_STORE,
    as_json: JsonOption = False,
) -> None:
    """Export a cohort's members; the manifest is written alongside (PATH.manifest.json, or manifest.json
    inside the links folder)."""
    from medsearch.api import Medsearch

    with cli_errors(as_json), Medsearch.open(store) as ms:
        wanted = [c.strip() for c in columns.split(",") if c.strip()]
        report = ms.cohorts.export(name, fmt, output, wanted, copy, run)
        if as_json:
            print_json(report)
        else:
            typer.echo(f"wrote {report['rows']} rows to {report['output']} (manifest {report['manifest']})"
                       + (f"; {report['skipped']} members without DICOM UIDs" if report["skipped"] else ""))


def _show(manifest: dict[str, Any], as_json: bool, members: int | None) -> None:
    if as_json:
        print_json(manifest)
        return
    model = manifest["model"]
    noun = "member" if manifest.get("unit", "image") == "image" else manifest["unit"]
    typer.echo(f"cohort {manifest['name']} run {manifest['run']} ({manifest['created_at']}): "
               f"{plural(manifest['count'], noun)}; model {model['id']}@{model['revision']}, "
               f"generation {manifest['store']['generation']}")
    for text, english in manifest.get("searched_as", {}).items():
        typer.echo(f"  searched as: {text} = {english}")
    for step in manifest["funnel"]:
        typer.echo(f"  {step['count']:>8}  (-{step['removed']})  {step['step']}")
    for item in manifest["collapsed"]:
        typer.echo(f"  collapsed {item['id']} into {item['into']} (cosine {item['cosine']:.4f})")
    for member in manifest["members"][:members]:
        score = "" if member["score"] is None else f"{member['score']:.4f}"
        report = "" if "report" not in member else (f" (report {member['report']}, model probability "
                                                    f"{member['probability']:.3f})")
        if "key" in member:
            typer.echo(f"  #{member['rank']} {score} {member['unit']} {member['key']}: "
                       f"{plural(member['size'], 'image')}, "
                       f"{member['modality'] or '-'}, {member['study_date'] or 'undated'}, best {member['image_id']} "
                       f"{member['path']}{report}")
        else:
            typer.echo(f"  #{member['rank']} {score} {member['id']} {member['path']}{report}")


def register(app: typer.Typer) -> None:
    app.add_typer(cohort_app, name="cohort")
