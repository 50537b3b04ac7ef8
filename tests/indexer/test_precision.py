"""Precision is chosen from what the hardware has: the rules of resolve_precision on a CPU with and without
bfloat16 instructions and on a GPU, and a real bfloat16 model on this CPU when it has them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import medsearch.indexer.precision as precision_module
import numpy as np
import pytest
from medsearch.errors import ModelUnavailable
from medsearch.indexer.model_loading import load_embedder
from medsearch.indexer.precision import cpu_has_bf16, resolve_precision

TEXTS = ["left pleural effusion", "a red circle", "normal chest radiograph", "fracture of the wrist"]


@pytest.fixture(params=[True, False], ids=["cpu-with-bf16", "cpu-without-bf16"])
def bf16_cpu(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    monkeypatch.setattr(precision_module, "cpu_has_bf16", lambda: request.param)
    return bool(request.param)


def test_cpu_rules(bf16_cpu: bool) -> None:
    assert resolve_precision("cpu", "auto") == "float32"
    assert resolve_precision("cpu", "fast") == ("bfloat16" if bf16_cpu else "int8")
    for name in ("float32", "float16", "int8"):
        assert resolve_precision("cpu", name) == name
    if bf16_cpu:
        assert resolve_precision("cpu", "bfloat16") == "bfloat16"
    else:
        with pytest.raises(ModelUnavailable, match=r"bfloat16 instructions.*--precision fast"):
            resolve_precision("cpu", "bfloat16")


@pytest.mark.parametrize("gpu_bf16, want", [(True, "bfloat16"), (False, "float16")])
def test_gpu_rules(monkeypatch: pytest.MonkeyPatch, gpu_bf16: bool, want: str) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: gpu_bf16)
    assert resolve_precision("cuda", "auto") == want
    assert resolve_precision("cuda:1", "fast") == want
    assert resolve_precision("cuda", "float32") == "float32"
    with pytest.raises(ModelUnavailable, match="CPU only"):
        resolve_precision("cuda", "int8")


def test_unknown_names_list_the_choices() -> None:
    with pytest.raises(ModelUnavailable, match="auto, fast, float32, bfloat16, float16, int8"):
        resolve_precision("cpu", "half")


def test_the_probe_agrees_with_the_cpu_flags() -> None:
    flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("flags")), None)
    if flags is None:
        pytest.skip("no /proc/cpuinfo flags here")
    assert cpu_has_bf16() == bool({"amx_bf16", "avx512_bf16"} & set(flags))


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no bfloat16 instructions")
def test_bfloat16_on_this_cpu_keeps_the_contract_and_stays_close_to_float32(trained_model: Path) -> None:
    import torch

    exact = load_embedder(str(trained_model), device="cpu", precision="float32")
    fast = load_embedder(str(trained_model), device="cpu", precision="fast")
    assert fast.precision == "bfloat16" and exact.precision == "float32"
    assert {p.dtype for p in fast.model.parameters()} == {torch.bfloat16}
    # Weights cast to bf16 inside inference_mode become inference tensors, and bf16 matmuls on them ran 3-4x
    # slower on this CPU, no faster than float32 (presumably oneDNN cannot cache their packed form).
    assert not any(p.is_inference() for p in fast.model.parameters())
    assert (fast.model_id, fast.revision, fast.dim) == (exact.model_id, exact.revision, exact.dim)

    pixels = np.random.default_rng(3).uniform(-1.0, 1.0, (6, 3, fast.preprocessor.size, fast.preprocessor.size))
    for got, want in ((fast.embed_images(pixels.astype(np.float32)), exact.embed_images(pixels.astype(np.float32))),
                      (fast.embed_texts(TEXTS), exact.embed_texts(TEXTS))):
        assert got.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        cosines = np.sum(got * want, axis=1)
        assert cosines.min() > 0.99, cosines
        assert not np.allclose(got, want, atol=1e-6), "bfloat16 vectors equal float32 ones: nothing changed"


def test_the_store_keeps_which_precisions_embedded_it(cli: Callable[..., Any], image_folder: Path,
                                                      trained_model: Path, tmp_path: Path) -> None:
    """Each run's precision is recorded; a run in another precision says so (stderr, and in --json), and
    info and cohort manifests list them all."""
    store = tmp_path / "store"
    first = cli("index", image_folder / "png", "--store", store, "--model", trained_model, "--workers", "0",
                "--precision", "int8", "--json")
    assert first["precision"] == "int8" and first["other_precisions"] == []
    assert cli("info", "--store", store, "--json")["precisions"] == ["int8"]
    unchanged = cli("index", image_folder / "png", "--store", store, "--precision", "float32", "--json")
    assert unchanged["precision"] is None  # nothing embedded, nothing recorded
    assert cli("info", "--store", store, "--json")["precisions"] == ["int8"]
    mixed = cli("index", image_folder / "dicom", "--store", store, "--workers", "0", "--precision", "float32")
    assert "also holds vectors embedded in int8; these are float32" in mixed.stderr
    assert mixed.stdout.startswith("added ") and mixed.stdout.strip().endswith(" s (float32)"), mixed.stdout
    assert cli("info", "--store", store, "--json")["precisions"] == ["float32", "int8"]
    assert "\nprecisions: float32, int8\n" in cli("info", "--store", store).stdout
    cohort = cli("cohort", "create", "reds", "--include", "text:a red circle top 3", "--store", store, "--json")
    assert cohort["model"]["image_precisions"] == ["float32", "int8"]
