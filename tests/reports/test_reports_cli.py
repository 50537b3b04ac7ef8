"""Reports through the CLI, in real subprocesses: a folder of DICOM radiographs with Basic, Enhanced and
Comprehensive SRs (written with pydicom) indexes with its SRs read as reports, a CSV adds the fourth
study's report by accession number, ``report.<finding>`` filters and ``--report`` searches, alone and with
a text query, units and counts; and no identifier of the reports reaches the database file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.reports.report_data import IDENTIFIERS, REPORTS, STUDIES, write_archive

UIDS = list(STUDIES)


def run_cli(*args: Any, expect: int = 0) -> Any:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("MEDSEARCH_STORE", None)
    done = subprocess.run([sys.executable, "-m", "medsearch.cli", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == expect, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout) if "--json" in args and done.stdout.strip() else done


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("reports-cli")
    folder = write_archive(root / "archive")
    store = root / "store"
    indexed = run_cli("index", folder, "--store", store, "--model", tiny_model, "--workers", "1", "--json")
    csv_file = root / "study4.csv"
    csv_file.write_text("accession,report\n" + f'ACC100004,"{REPORTS[UIDS[3]]}"\n')
    imported = run_cli("reports", "import", csv_file, "--key", "accession", "--store", store, "--json")
    return {"root": root, "folder": folder, "store": store, "indexed": indexed, "imported": imported}


def _paths(store: Path, *args: Any) -> set[str]:
    found = run_cli("search", "chest radiograph", "-k", "50", "--store", store, "--json", *args)["results"]
    return {Path(r["path"]).parent.name for r in found}


def test_srs_are_read_as_reports_while_indexing(archive: dict[str, Any]) -> None:
    indexed = archive["indexed"]
    assert (indexed["added"], indexed["reports"], indexed["failed"]) == (8, 3, 0), indexed
    imported = archive["imported"]
    assert (imported["stored"], imported["bad"], imported["key"]) == (1, 0, "accession")
    info = run_cli("reports", "info", "--store", archive["store"], "--json")
    assert info["reports"] == 4 and {"pleural_effusion", "pneumothorax", "pneumonia"} <= set(info["findings"])
    again = run_cli("index", archive["folder"], "--store", archive["store"], "--json")
    assert (again["added"], again["reports"], again["failed"]) == (0, 3, 0)  # SRs read again, replaced
    assert run_cli("reports", "info", "--store", archive["store"], "--json")["reports"] == 4


def test_report_fields_filter_every_image_of_the_study(archive: dict[str, Any]) -> None:
    store = archive["store"]
    assert _paths(store, "--where", "report.pleural_effusion = 'positive'") == {"study1", "study3"}
    assert _paths(store, "--where", "report.pneumothorax = 'positive'") == {"study2"}  # the Enhanced SR's study
    assert _paths(store, "--where", "report.pneumonia = 'uncertain'") == {"study3"}
    assert _paths(store, "--where", "report.pleural_effusion = 'negative' and modality = 'CR'") == {"study2",
                                                                                                     "study4"}
    count = run_cli("search", "chest", "--count", "--where", "report.pleural_effusion = 'positive'", "--store", store,
                    "--json")
    assert count["count"] == 4
    wrong = run_cli("search", "x", "--where", "report.pleural_efusion = 'positive'", "--store", store, expect=2)
    assert "did you mean 'report.pleural_effusion'" in wrong.stderr + wrong.stdout


def test_report_search_is_negation_aware_and_combines(archive: dict[str, Any]) -> None:
    store = archive["store"]
    assert _paths(store, "--report", "pneumothorax") == {"study2"}
    assert _paths(store, "--report", "pneumothorax", "--report-polarity", "negative") == {"study1", "study3",
                                                                                            "study4"}
    assert _paths(store, "--report", "right pleural effusion") == {"study1", "study3"}
    assert _paths(store, "--report", "pneumonia", "--report-polarity", "uncertain") == {"study3"}
    assert _paths(store, "--report", "pleural effusion", "--where", "report.pneumonia is null") == {"study1"}
    studies = run_cli("search", "chest radiograph", "--report", "pleural effusion", "--unit", "study", "--store",
                      store, "--json")["results"]
    assert {r["key"] for r in studies} == {UIDS[0], UIDS[2]}
    count = run_cli("search", "chest", "--count", "--report", "effusion", "--report-polarity", "any", "--store", store,
                    "--json")
    assert count["count"] == 8
    bad = run_cli("search", "x", "--report", "effusion", "--report-polarity", "maybe", "--store", store, expect=2)
    assert "unknown report polarity" in bad.stderr + bad.stdout


def test_no_identifier_of_a_report_reaches_the_database(archive: dict[str, Any]) -> None:
    stored = b"".join(path.read_bytes() for path in archive["store"].iterdir() if path.name.startswith("medsearch.db"))
    assert b"pleural effusion" in stored  # the de-identified sentences are there
    for identifier in IDENTIFIERS:
        assert identifier.encode() not in stored, identifier


def test_kept_text_is_stored_only_when_asked(archive: dict[str, Any], tmp_path: Path) -> None:
    store = archive["store"]
    csv_file = tmp_path / "kept.csv"
    csv_file.write_text("study_uid,report\n1.2.826.0.1.50,Kept for Dr Wilhelmina Fairweather. Tiny pneumothorax.\n")
    run_cli("reports", "import", csv_file, "--keep-report-text", "--store", store, "--json")
    stored = b"".join(path.read_bytes() for path in store.iterdir() if path.name.startswith("medsearch.db"))
    assert b"Wilhelmina Fairweather" in stored  # the grep above would have seen it
