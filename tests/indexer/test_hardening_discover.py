"""Red-team attacks on file discovery (issue 15, items 1 and 9): file names that are not UTF-8, unreadable
subfolders and symlinks that lead out of the indexed folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import write_png

Cli = Callable[..., Any]
BAD_NAME = os.fsdecode(b"b_\xff\xfe.png")
"""A name with bytes that are not UTF-8 (Python holds them as lone surrogates)."""


def _index(cli: Cli, folder: Path, store: Path, model: Path) -> dict[str, Any]:
    return cli("index", folder, "--store", store, "--model", model, "--json", "--workers", "0")


def test_a_non_utf8_file_name_is_a_recorded_failure_and_the_run_goes_on(cli: Cli, tiny_model: Path,
                                                                          tmp_path: Path) -> None:
    folder, store = tmp_path / "images", tmp_path / "store"
    write_png(folder / "a_good.png", 1)
    write_png(folder / BAD_NAME, 2)
    write_png(folder / "c_good.png", 3)

    report = _index(cli, folder, store, tiny_model)
    assert (report["added"], report["failed"]) == (2, 1)
    failure = report["failures"][0]
    assert failure["path"] == str(folder.resolve() / "b_\\xff\\xfe.png")  # shown losslessly, escaped
    assert "not valid UTF-8" in failure["reason"]

    again = _index(cli, folder, store, tiny_model)
    assert (again["added"], again["unchanged"], again["failed"]) == (0, 2, 1)
    checked = cli("check", "--store", store, "--json")
    assert checked["facts"]["failures"] == 1
    assert checked["failures"][0]["path"].endswith("b_\\xff\\xfe.png")


def test_an_unreadable_subfolder_is_recorded(tmp_path: Path) -> None:
    """The folder is made unreadable by its mode. Root reads every folder, so when the tests run as root
    the walk runs without the capabilities that override file modes (util-linux's setpriv)."""
    base = tmp_path / "images"
    write_png(base / "a.png", 1)
    write_png(base / "locked" / "b.png", 2)
    os.chmod(base / "locked", 0o000)
    script = ("import json, sys; from pathlib import Path; from medsearch.indexer.discover import discover; "
              "print(json.dumps([[e.path, e.problem] for e in discover([Path(sys.argv[1])])]))")
    no_override = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                   "--inh-caps=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    try:
        done = subprocess.run([*no_override, sys.executable, "-c", script, str(base)], capture_output=True,
                              text=True, cwd=Path(__file__).resolve().parents[2], check=True)
    finally:
        os.chmod(base / "locked", 0o755)
    found = dict(json.loads(done.stdout))
    assert found[str(base / "a.png")] is None
    assert "cannot be read" in found[str(base / "locked")]
    assert str(base / "locked" / "b.png") not in found


def test_a_file_symlink_leading_outside_the_root_is_not_followed(cli: Cli, tiny_model: Path,
                                                                 tmp_path: Path) -> None:
    """The rule: a symlink is followed only when its target lies inside the indexed folder (the server
    serves exactly those files); one that leads out is recorded as a failure, its file never read."""
    folder, outside, store = tmp_path / "images", tmp_path / "elsewhere", tmp_path / "store"
    write_png(folder / "a.png", 1)
    write_png(folder / "inside_target.png", 4)
    (folder / "b_inside.png").symlink_to(folder / "inside_target.png")
    (folder / "c_outside.png").symlink_to(write_png(outside / "secret.png", 2))

    report = _index(cli, folder, store, tiny_model)
    assert (report["added"], report["failed"]) == (3, 1)
    assert report["failures"][0]["path"] == str(folder.resolve() / "c_outside.png")
    assert "outside the indexed folder" in report["failures"][0]["reason"]
    paths = [r["path"] for r in cli("search", "x", "-k", "10", "--store", store, "--json")["results"]]
    assert not any("secret" in p or "c_outside" in p for p in paths)


def test_a_lone_surrogate_in_the_search_text_or_where_is_a_one_line_error(cli: Cli, tiny_model: Path,
                                                                          tmp_path: Path) -> None:
    """What a shell passes for bytes that are not UTF-8 (``$'\\xff'``) reaches Python as lone surrogates."""
    folder, store = tmp_path / "images", tmp_path / "store"
    write_png(folder / "a.png", 1)
    _index(cli, folder, store, tiny_model)
    bad = os.fsdecode(b"chest \xff")
    for args in (["search", bad], ["search", "chest", "--where", f"modality = '{bad}'"],
                 ["search", "chest", "--like", bad]):
        shown = cli(*args, "--store", store, "--json", expect=2)
        assert shown["error"]["code"] == "invalid_query" and "UTF-8" in shown["error"]["message"]
        plain = cli(*args, "--store", store, expect=2)
        assert plain.output.count("\n") == 1 and plain.output.startswith("error: ")


def test_check_on_a_damaged_database_does_not_send_you_to_check(cli: Cli, tiny_model: Path, tmp_path: Path) -> None:
    folder, store = tmp_path / "images", tmp_path / "store"
    write_png(folder / "a.png", 1)
    _index(cli, folder, store, tiny_model)
    (store / "medsearch.db").write_bytes(b"this is not a database at all" * 200)
    for name in ("medsearch.db-wal", "medsearch.db-shm"):
        (store / name).unlink(missing_ok=True)
    message = cli("check", "--store", store, "--json", expect=5)["error"]["message"]
    assert "damaged" in message and "run `medsearch check`" not in message and "backup" in message
