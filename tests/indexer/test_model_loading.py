"""The real loading path: a local folder loads; a model that cannot be had fails in one clear sentence."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from medsearch.errors import ModelUnavailable
from medsearch.indexer.model_loading import load_embedder


def test_a_saved_folder_loads_through_automodel(tiny_model: Path) -> None:
    embedder = load_embedder(str(tiny_model), device="cpu")
    assert embedder.model_id == str(tiny_model.resolve())
    assert embedder.revision.startswith("sha256:")
    assert embedder.preprocessor.size == 32


def test_missing_folder_says_so(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="does not exist"):
        load_embedder(str(tmp_path / "nowhere"), device="cpu")


def test_folder_without_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match=r"no config\.json"):
        load_embedder(str(tmp_path), device="cpu")


def test_gated_hub_model_offline_explains_how_to_get_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelUnavailable) as caught:
        load_embedder("google/medsiglip-448", device="cpu")
    message = str(caught.value)
    assert "google/medsiglip-448" in message and "hf auth login" in message and "--model" in message


def test_cli_fails_in_one_sentence_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "images" / "a.png")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    env.pop("MEDSEARCH_MODEL", None)
    done = subprocess.run([sys.executable, "-m", "medsearch.cli", "index", str(tmp_path / "images"), "--store",
                           str(tmp_path / "store")], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 3
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: Cannot load model 'google/medsiglip-448'")


def test_cuda_without_a_gpu_is_a_clear_error(tiny_model: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ModelUnavailable, match="no CUDA GPU"):
        load_embedder(str(tiny_model), device="cuda")
