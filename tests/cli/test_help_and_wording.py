"""Issue 14, help and wording: plain help (Rich markup not eaten), value types in click's words, -h and
--version, the cohort funnel's "where:" once, "1 member", and a did-you-mean for export columns."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_png

ROOT = Path(__file__).resolve().parent.parent.parent


def medsearch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "medsearch.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})


def test_help_keeps_brackets_and_names_types_plainly(cli: Any) -> None:
    evaluate = cli("evaluate", "--help").stdout
    assert "a [table] per label" in evaluate
    index = cli("index", "--help").stdout
    for shown in (evaluate, index):
        assert "<bool>" not in shown and "<list[" not in shown and "<path>" not in shown
    assert "--rename TEXT" in index and "--store PATH" in index and "--keep-identity " in index


def test_short_help_and_version() -> None:
    short, long = medsearch("-h"), medsearch("--help")
    assert short.returncode == 0 and short.stdout == long.stdout and "Commands:" in short.stdout
    assert medsearch("search", "-h").stdout == medsearch("search", "--help").stdout
    version = medsearch("--version")
    assert version.returncode == 0 and version.stdout.startswith("medsearch ")
    assert version.stdout.split()[1][0].isdigit() or version.stdout.split()[1] == "unknown"


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    from medsearch.cli import app
    from typer.testing import CliRunner

    root = tmp_path_factory.mktemp("wording")
    for seed in range(3):
        write_png(root / "images" / f"img{seed}.png", seed)
    done = CliRunner().invoke(app, ["index", str(root / "images"), "--store", str(root / "store"), "--model",
                                    str(tiny_model), "--workers", "0"])
    assert done.exit_code == 0, done.output
    return root / "store"


def test_funnel_says_where_once_and_counts_members(cli: Any, small_store: Path) -> None:
    out = cli("cohort", "create", "one", "--where", "path like '%img1.png'", "--store", small_store).stdout
    assert "where: path like '%img1.png'" in out and "where where" not in out and "where: where" not in out
    assert "1 member;" in out and "1 members" not in out
    listed = cli("cohort", "list", "--store", small_store).stdout
    assert "one: 1 member, 1 run," in listed


def test_export_unknown_column_has_a_did_you_mean(cli: Any, small_store: Path, tmp_path: Path) -> None:
    cli("cohort", "create", "all", "--where", "modality is null", "--store", small_store)
    failed = cli("cohort", "export", "all", "--format", "csv", "-o", tmp_path / "x.csv", "--columns", "modalty",
                 "--store", small_store, expect=2)
    assert "unknown column 'modalty'" in failed.output and "did you mean 'modality'" in failed.output
    assert "group" not in failed.output


def test_another_model_names_the_stores_model(cli: Any, small_store: Path, tiny_model: Path,
                                              trained_model: Path, tmp_path: Path) -> None:
    missing = cli("search", "x", "--model", tmp_path / "no-such-model", "--store", small_store, "--json", expect=3)
    message = missing["error"]["message"]
    assert f"built with model {str(tiny_model.resolve())!r}" in message and "leave out --model" in message
    other = cli("search", "x", "--model", trained_model, "--store", small_store, "--json", expect=4)
    assert str(tiny_model.resolve()) in other["error"]["message"]
