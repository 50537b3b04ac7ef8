"""Load a SigLIP checkpoint from the Hugging Face hub or a local folder, or fail in one clear sentence.

Weights load as safetensors only, never with ``trust_remote_code``. The revision recorded in the store is
the hub commit for a hub model, and a digest of the config and weight headers for a local folder, so a
folder that is moved keeps its identity and a retrained one does not.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from medsearch.errors import ModelUnavailable
from medsearch.indexer.embedder import DEFAULT_MODEL, SiglipEmbedder
from medsearch.indexer.model_identity import folder_digest
from medsearch.indexer.precision import resolve_precision
from medsearch.indexer.quantize import quantize_int8

GATED_HELP = (
    "MedSigLIP is gated: on a machine with network access, accept its terms at "
    "https://huggingface.co/{model}, run `hf auth login`, then `hf download {model} --local-dir ./medsiglip-448` "
    "and pass `--model ./medsiglip-448` (or set MEDSEARCH_MODEL)."
)


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is usable, else ``cpu``. Raises ModelUnavailable for cuda without one."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelUnavailable("--device cuda was asked for, but PyTorch sees no CUDA GPU; use --device cpu.")
    return device


def load_embedder(model: str = DEFAULT_MODEL, device: str = "auto", precision: str = "auto") -> SiglipEmbedder:
    """Load ``model`` (a hub id or a local folder). ``precision``: auto, fast, float32, bfloat16, float16 or
    int8, resolved for this hardware by ``medsearch.indexer.precision.resolve_precision``. Raises ModelUnavailable
    with what to do about it."""
    import torch

    device = resolve_device(device)
    chosen = resolve_precision(device, precision)
    source, local_only = _locate(model)
    int8 = chosen == "int8"
    dtype = torch.float32 if int8 else getattr(torch, chosen)
    try:
        from transformers import AutoModel, AutoProcessor
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()

        loaded = AutoModel.from_pretrained(
            source, dtype=dtype, use_safetensors=True, trust_remote_code=False, local_files_only=local_only
        )
        processor = AutoProcessor.from_pretrained(source, trust_remote_code=False, local_files_only=local_only)
    except Exception as exc:
        raise ModelUnavailable(_explain(model, exc)) from exc
    if not hasattr(loaded, "get_text_features") or not hasattr(loaded, "get_image_features"):
        raise ModelUnavailable(f"Model {model!r} is not a two-tower SigLIP model ({type(loaded).__name__}).")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    loaded.to(device)
    if int8:
        loaded = quantize_int8(loaded)
    model_id = str(Path(source).resolve()) if Path(source).is_dir() else model
    return SiglipEmbedder(loaded, processor, model_id, _revision(source, loaded), device, chosen)


def _locate(model: str) -> tuple[str, bool]:
    """(what to pass to from_pretrained, whether to stay offline)."""
    folder = Path(model).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise ModelUnavailable(f"Model folder {folder} has no config.json; it is not a saved model.")
        return str(folder), True
    if model.startswith((".", "/", "~")) or model.count("/") > 1:
        raise ModelUnavailable(f"Model folder {model} does not exist. " + GATED_HELP.format(model=DEFAULT_MODEL))
    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0") or not _hub_reachable()
    return model, offline


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP probe, so that an offline machine fails at once instead of after a minute of retries."""
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname or "huggingface.co", port), timeout=timeout):
            return True
    except OSError:
        return False


def _explain(model: str, exc: Exception) -> str:
    text = str(exc).lower()
    if "gated" in text or "401" in text or "403" in text or "access" in text:
        why = "access to it was refused (the repository is gated)"
    elif "not a valid model identifier" in text or "404" in text or "repository not found" in text:
        why = "no such model on the Hugging Face hub"
    elif "connect" in text or "offline" in text or "cached" in text or "resolve" in text:
        why = "the Hugging Face hub is unreachable and the model is not in the local cache"
    else:
        why = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return f"Cannot load model {model!r}: {why}. " + GATED_HELP.format(model=DEFAULT_MODEL)


def _revision(source: str, model) -> str:  # type: ignore[no-untyped-def]
    """The hub commit transformers loaded, else the folder's digest (as ``model_identity`` reads it)."""
    commit = getattr(model.config, "_commit_hash", None)
    return str(commit) if commit else folder_digest(Path(source))
