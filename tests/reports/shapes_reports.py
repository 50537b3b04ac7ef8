"""Drawn shapes indexed with the trained tiny model, with a report per image whose labels are known.

60 PNGs (10 per class), two per patient (a ``patient`` field imported from a sidecar). The report of
each image says what it shows about the two findings of a tiny vocabulary, ``red_circle`` and
``blue_square`` ("A red circle. No blue square."); four white crosses' reports say "Possible red circle"
(red_circle uncertain); ``green_stripes`` is mentioned by six reports only (three positive, three
negative: too few for an AUC). ``wrong`` names reports made deliberately wrong for the discordance tests.
The reports go in as a CSV keyed by path, read by the labeller with the vocabulary below.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.tiny_siglip import CLASS_CAPTIONS, make_caption_images

FINDINGS = ("red_circle", "blue_square", "green_stripes")
BLURRED = {"red_circle": ["a red circle", "a yellow triangle"],
           "blue_square": ["a blue square", "a black dot on white"],
           "green_stripes": ["green horizontal stripes"]}
"""Prompt ensembles that blur two classes on purpose, so that AUCs fall below 1 (about 0.89 and 0.95)."""
VOCABULARY = "".join(f"[{name}]\nprompts = {json.dumps(prompts)}\n" for name, prompts in BLURRED.items())
"""The label set TOML the AUC tests use (the model scores the prompts; the labeller reads the names)."""
SHARP = "".join(f'[{name}]\nprompts = ["{CLASS_CAPTIONS[name][0]}"]\n' for name in FINDINGS)
"""One caption per finding: the model tells these apart (AUC 1), as the discordance tests need."""
UNCERTAIN = ("white_cross_000", "white_cross_001", "white_cross_002", "white_cross_003")
WRONG = {"red_circle_004": "No red circle. No blue square.",            # report negative, model high
         "black_dot_005": "A red circle. No blue square.",              # report positive, model low
         "green_stripes_006": "A red circle. No blue square.",
         "yellow_triangle_007": "A red circle. No blue square."}


def report_text(stem: str) -> str:
    """The right report of a drawn image, by its file stem (``red_circle_003``)."""
    if stem.startswith("red_circle"):
        text = "A red circle. No blue square."
    elif stem.startswith("blue_square"):
        text = "A blue square. No red circle."
    elif stem in UNCERTAIN:
        text = "Possible red circle. No blue square."
    else:
        text = "No red circle. No blue square."
    if stem.startswith("green_stripes") and int(stem[-3:]) < 3:
        text += " Green stripes."
    elif stem.startswith("yellow_triangle") and int(stem[-3:]) < 3:
        text += " No green stripes."
    return text


def truth(stem: str, finding: str) -> int:
    """1, 0, or -1 (uncertain) for the right report of ``stem``."""
    if finding == "red_circle" and stem in UNCERTAIN:
        return -1
    return int(stem.startswith(finding))


def write_reports_csv(path: Path, images: list[Any], wrong: dict[str, str] | None = None) -> Path:
    """A reports CSV (path, report) with the right report of every image, or the ``wrong`` one."""
    import csv

    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "report"])
        for image in images:
            stem = image.path.stem
            writer.writerow([str(image.path.resolve()), (wrong or {}).get(stem, report_text(stem))])
    return path


def build(root: Path, model: Path, run_cli: Callable[..., Any]) -> dict[str, Any]:
    """Index the shapes, import the patients, write the vocabulary; reports not yet imported."""
    images = make_caption_images(root / "images", per_class=10, seed=34)
    sidecar = root / "patients.csv"
    sidecar.write_text("file,patient\n" + "".join(f"{img.path.name},p{n // 2}\n" for n, img in enumerate(images)))
    store = root / "store"
    run_cli("index", root / "images", "--store", store, "--model", model, "--workers", "0")
    run_cli("import-metadata", sidecar, "--store", store)
    vocabulary, sharp = root / "shapes-findings.toml", root / "shapes-sharp.toml"
    vocabulary.write_text(VOCABULARY)
    sharp.write_text(SHARP)
    return {"root": root, "store": store, "images": images, "model": model, "vocabulary": vocabulary, "sharp": sharp}


def copy_store(built: dict[str, Any], target: Path) -> dict[str, Any]:
    """A private copy of a built store."""
    shutil.copytree(built["store"], target, ignore=shutil.ignore_patterns("*.lock"))
    return {**built, "store": target}


@pytest.fixture(scope="session")
def shapes_reports(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The shapes store (no reports yet), built once per session."""
    from medsearch.cli import app
    from typer.testing import CliRunner

    def run_cli(*args: Any) -> None:
        result = CliRunner().invoke(app, [str(a) for a in args])
        assert result.exit_code == 0, result.output

    return build(tmp_path_factory.mktemp("shapes-reports"), trained_model, run_cli)


def import_reports(built: dict[str, Any], store: Path, wrong: dict[str, str] | None = None) -> None:
    """Import the reports (the right ones, or ``wrong`` where given) into ``store`` as a CSV keyed by path
    (``medsearch reports import``), read by the labeller with the tiny vocabulary."""
    from medsearch.cli import app
    from typer.testing import CliRunner

    table = write_reports_csv(store.parent / f"{store.name}-reports.csv", built["images"], wrong)
    result = CliRunner().invoke(app, ["reports", "import", str(table), "--key", "path", "--label-set",
                                      str(built["vocabulary"]), "--store", str(store), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["stored"] == len(built["images"]) and summary["bad"] == 0, result.stdout
