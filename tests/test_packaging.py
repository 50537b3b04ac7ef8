"""The distribution installs one namespace, ``medsearch``: a wheel built from the project holds no
top-level ``indexer``, ``search`` or ``storage`` (names that collide with other distributions and a
user's own modules), and the installed package works from outside the checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_installs_only_the_medsearch_namespace(tmp_path: Path) -> None:
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("medsearch-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {"medsearch", next(t for t in top if t.endswith(".dist-info"))}, top
    for expected in ("medsearch/api.py", "medsearch/indexer/dicom.py", "medsearch/storage/store.py",
                     "medsearch/cli/main.py", "medsearch/web/index.html", "medsearch/labels/builtin/cxr-findings.toml"):
        assert expected in names, expected

    target = tmp_path / "installed"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
    code = ("import medsearch, medsearch.api, medsearch.indexer.dicom, medsearch.storage.store, medsearch.cli.main; "
            "from medsearch import Medsearch; from medsearch.labels.labelsets import builtin_label_sets; "
            "print(medsearch.__file__, len(builtin_label_sets()))")
    ran = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r}); {code}"],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith(str(target / "medsearch")), ran.stdout
    for name in ("indexer", "search", "storage"):
        alone = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r}); "
                                f"import {name}"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert "ModuleNotFoundError" in alone.stderr, name
