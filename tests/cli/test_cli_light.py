"""The CLI shell stays light: --help and option parsing must not import torch, transformers, faiss,
FastAPI or pydicom (heavy imports happen inside the commands that need them)."""

from __future__ import annotations

import subprocess
import sys


def test_help_imports_no_heavy_library() -> None:
    code = ("import sys, medsearch.cli; heavy = [m for m in ('torch', 'transformers', 'faiss', 'fastapi', 'pydicom') "
            "if m in sys.modules]; print(','.join(heavy))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
