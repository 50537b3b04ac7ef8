"""``evaluate --truth-from-reports`` on the trained tiny model: with reports a right labeller reads, the AUC
against the report labels equals the AUC against the true labels, uncertain reports are left out and
counted, a finding with too few positives says so; the same table from the CLI (in-process and a real
subprocess), Python and a running server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api_fixtures import running_server
from tests.reports.shapes_reports import (  # noqa: F401  (shapes_reports is a fixture)
    FINDINGS,
    copy_store,
    import_reports,
    shapes_reports,
    truth,
)


@pytest.fixture(scope="module")
def reported(shapes_reports: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:  # noqa: F811
    """The shapes store with every image's right report imported."""
    built = copy_store(shapes_reports, tmp_path_factory.mktemp("truth") / "store")
    import_reports(built, built["store"])
    return built


def _truth_csv(reported: dict[str, Any], path: Path) -> Path:
    """The true labels as ``evaluate --truth`` reads them: 1/0, -1 where the report is uncertain, blank
    where it does not mention the finding (green stripes)."""
    mentioned = {"green_stripes_000", "green_stripes_001", "green_stripes_002", "yellow_triangle_000",
                 "yellow_triangle_001", "yellow_triangle_002"}
    rows = ["path," + ",".join(FINDINGS)]
    for image in reported["images"]:
        stem = image.path.stem
        cells = [str(truth(stem, f)) if f != "green_stripes" or stem in mentioned else "" for f in FINDINGS]
        rows.append(f"{image.path.resolve()}," + ",".join(cells))
    path.write_text("\n".join(rows) + "\n")
    return path


def test_auc_against_reports_equals_auc_against_true_labels(cli: Callable[..., Any], reported: dict[str, Any],
                                                            tmp_path: Path) -> None:
    store, vocabulary = reported["store"], reported["vocabulary"]
    expected = cli("evaluate", "--truth", _truth_csv(reported, tmp_path / "truth.csv"), "--labels-file", vocabulary,
                   "--store", store, "--json")["labels"]
    plot = tmp_path / "aucs.png"
    got = cli("evaluate", "--truth-from-reports", "--labels-file", vocabulary, "--plot", plot, "--store", store,
              "--json")
    for name in ("red_circle", "blue_square"):
        figures = got["findings"][name]
        assert figures["auc"] == pytest.approx(expected[name]["auc"], abs=1e-9)
        assert (figures["positives"], figures["negatives"]) == (expected[name]["positives"],
                                                                expected[name]["negatives"])
        assert figures["auc_low"] <= figures["auc"] <= figures["auc_high"] and figures["note"] is None
        assert 0.8 < figures["auc"] < 0.99 and figures["auc_high"] - figures["auc_low"] > 0.01  # blurred prompts
    assert expected["red_circle"]["unknown"] == 4 and got["findings"]["red_circle"]["uncertain"] == 4
    assert got["findings"]["red_circle"]["positives"] == 10 and got["findings"]["red_circle"]["negatives"] == 46
    assert got["findings"]["red_circle"]["patients"] == 28  # the four uncertain images are two patients' images
    assert got["findings"]["blue_square"]["uncertain"] == 0 and got["findings"]["blue_square"]["patients"] == 30
    stripes = got["findings"]["green_stripes"]
    assert stripes["auc"] is None and stripes["note"] == "too few positives (3 < 5) for an AUC"
    assert (stripes["positives"], stripes["negatives"]) == (3, 3)
    assert got["images"] == 60 and got["patients"] == 30 and got["group_by"] == "patient" and got["reports"] == 60
    assert plot.stat().st_size > 1000
    again = cli("evaluate", "--truth-from-reports", "--labels-file", vocabulary, "--store", store, "--json")
    assert again["findings"] == got["findings"]  # seeded: the same interval every time
    other = cli("evaluate", "--truth-from-reports", "--labels-file", vocabulary, "--seed", "7", "--store", store,
                "--json")["findings"]["red_circle"]
    assert other["auc"] == got["findings"]["red_circle"]["auc"]


def test_the_table_in_a_subprocess_python_and_http(cli: Callable[..., Any], reported: dict[str, Any]) -> None:
    from medsearch.api import Medsearch
    from medsearch.indexer.model_loading import load_embedder
    from medsearch.labels.labelsets import load_label_set
    from medsearch.server.app import create_app
    from medsearch.server.deps import ServerSettings

    store, vocabulary = reported["store"], reported["vocabulary"]
    expected = cli("evaluate", "--truth-from-reports", "--labels-file", vocabulary, "--store", store, "--json")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("MEDSEARCH_STORE", None)
    shown = subprocess.run([sys.executable, "-m", "medsearch.cli", "evaluate", "--truth-from-reports", "--labels-file",
                            str(vocabulary), "--store", str(store)], capture_output=True, text=True, env=env,
                           timeout=300)
    assert shown.returncode == 0, shown.stderr
    red = expected["findings"]["red_circle"]
    row = next(line for line in shown.stdout.splitlines() if "red_circle" in line)
    assert f"{red['auc']:.3f}" in row and f"{red['auc_low']:.3f}-{red['auc_high']:.3f}" in row
    assert "green_stripes: too few positives (3 < 5) for an AUC" in shown.stderr
    assert "Traceback" not in shown.stderr

    with Medsearch.open(store) as ms:
        report = ms.learning.evaluate_reports(load_label_set(vocabulary))
    assert report.findings == expected["findings"]

    prompts = {label.name: list(label.prompts) for label in load_label_set(vocabulary).labels}
    embedder = load_embedder(str(reported["model"]), device="cpu")
    with running_server(create_app(store, embedder=embedder, settings=ServerSettings())) as base:
        answer = httpx.post(f"{base}/api/evaluate/reports", json={"label_prompts": prompts}, timeout=120)
        assert answer.status_code == 200, answer.text
        assert answer.json()["findings"] == expected["findings"]
        refused = httpx.post(f"{base}/api/evaluate/reports", json={"label_prompts": prompts, "rounds": 5},
                             timeout=30)
        assert refused.status_code == 422
        unknown = httpx.post(f"{base}/api/evaluate/reports", json={"labels_set": "nope"}, timeout=30)
        assert unknown.status_code == 400 and "no built-in label set 'nope'" in unknown.text


def test_refusals(cli: Callable[..., Any], shapes_reports: dict[str, Any], reported: dict[str, Any],  # noqa: F811
                  tmp_path: Path) -> None:
    vocabulary = reported["vocabulary"]
    bare = copy_store(shapes_reports, tmp_path / "bare")["store"]
    none = cli("evaluate", "--truth-from-reports", "--labels-file", vocabulary, "--store", bare, "--json", expect=2)
    assert "holds no reports" in none["error"]["message"]
    both = cli("evaluate", "--truth-from-reports", "--truth", tmp_path / "t.csv", "--labels-file", vocabulary,
               "--store", reported["store"], "--json", expect=2)
    assert "one of --truth, --truth-fields or --truth-from-reports" in both["error"]["message"]
    few = cli("evaluate", "--truth-from-reports", "--rounds", "10", "--labels-file", vocabulary, "--store",
              reported["store"], "--json", expect=2)
    assert "--rounds must be at least 100" in few["error"]["message"]
    column = cli("evaluate", "--truth-from-reports", "--group-by", "nope", "--labels-file", vocabulary, "--store",
                 reported["store"], "--json", expect=2)
    assert "unknown column 'nope'" in column["error"]["message"]
