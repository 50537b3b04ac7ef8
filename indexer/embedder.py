"""The model behind a small interface. ``Embedder`` is what the rest of medsearch uses; ``SiglipEmbedder``
is the real adapter over Hugging Face transformers (MedSigLIP-448 or any SigLIP checkpoint)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from medsearch.indexer.preprocess import PREPROCESSING_VERSION, Preprocessor
from medsearch.storage.model_record import ModelRecord

if TYPE_CHECKING:
    import torch

DEFAULT_MODEL = "google/medsiglip-448"
QUERY_TEXTS = 8
"""Up to this many texts in one call is query-time embedding (a search, a few prompts): it runs on
``query_thread_count()`` threads; larger calls and every image batch keep all of torch's threads."""


def query_thread_count() -> int:
    """Threads for query-time text embedding: ``MEDSEARCH_QUERY_THREADS``, else 1 (measured best on these
    2-core machines, quiet and busy: ``benchmarks/bench_threads.py``)."""
    try:
        return max(1, int(os.environ.get("MEDSEARCH_QUERY_THREADS", "1")))
    except ValueError:
        return 1


@contextmanager
def query_threads(threads: int) -> Iterator[None]:
    """Run the block on ``threads`` torch threads (process-wide: callers hold the model alone, as
    ``medsearch.encoder.Encoder`` makes them), then restore the count it had."""
    import torch

    before = torch.get_num_threads()
    if threads == before:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Embedder(Protocol):
    """Both towers of a two-tower model. Vectors are float32 rows of unit length, shape (n, dim)."""

    model_id: str
    revision: str
    dim: int
    precision: str  # float32, bfloat16, float16 or int8
    preprocessor: Preprocessor
    logit_scale: float
    logit_bias: float

    def embed_images(self, pixel_values: np.ndarray) -> np.ndarray:
        """(n, 3, S, S) float32 from ``preprocessor`` -> (n, dim) float32 unit rows."""
        ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """n strings -> (n, dim) float32 unit rows. Uses the text tower only."""
        ...


def model_record(embedder: Embedder) -> ModelRecord:
    """What a store records about the vectors ``embedder`` makes (model, revision, size, preprocessing)."""
    return ModelRecord(embedder.model_id, embedder.revision, embedder.dim, PREPROCESSING_VERSION)


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """(n, d) -> (n, d) float32 with unit L2 norm per row (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, np.float32(1e-12))


def _pooled(output: Any) -> torch.Tensor:
    """transformers 5 returns an output object whose ``pooler_output`` is the projected embedding;
    4.x returned the tensor itself."""
    return output.pooler_output if hasattr(output, "pooler_output") else output


def _side(size: Any) -> int:
    """The square input size from a processor's ``size`` (a dict, a SizeDict or an int)."""
    if isinstance(size, int):
        return size
    for key in ("height", "shortest_edge"):
        value = size.get(key) if isinstance(size, dict) else getattr(size, key, None)
        if value:
            return int(value)
    raise ValueError(f"cannot read the image size from {size!r}")


class SiglipEmbedder:
    """A SigLIP model and its processor, loaded by ``medsearch.indexer.model_loading.load_embedder``."""

    def __init__(self, model: Any, processor: Any, model_id: str, revision: str, device: str,
                 precision: str | None = None) -> None:
        """``precision``: what ``load_embedder`` chose (int8 must be named); default: the weights' dtype."""
        import torch

        self.model = model.eval()
        self.tokenizer = processor.tokenizer
        self.model_id = model_id
        self.revision = revision
        self.device = device
        self.dtype = next(model.parameters()).dtype
        self.precision = precision or str(self.dtype).removeprefix("torch.")
        config = model.config
        self.dim = int(config.text_config.projection_size or config.text_config.hidden_size)
        self.text_length = int(config.text_config.max_position_embeddings)
        image_processor = processor.image_processor
        side = _side(image_processor.size)
        self.preprocessor = Preprocessor(
            size=side,
            mean=tuple(float(v) for v in image_processor.image_mean),  # type: ignore[arg-type]
            std=tuple(float(v) for v in image_processor.image_std),  # type: ignore[arg-type]
        )
        with torch.no_grad():
            self.logit_scale = float(model.logit_scale.float().item())
            self.logit_bias = float(model.logit_bias.float().item())

    def embed_images(self, pixel_values: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            batch = torch.from_numpy(np.ascontiguousarray(pixel_values, dtype=np.float32))
            if self.device.startswith("cuda"):
                batch = batch.pin_memory()  # page-locked, so the copy to the GPU is one DMA transfer
            batch = batch.to(self.device, dtype=self.dtype, non_blocking=True)
            features = _pooled(self.model.get_image_features(pixel_values=batch))
            return normalize_rows(features.float().cpu().numpy())

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        tokens = self.tokenizer(
            list(texts),
            padding="max_length",
            max_length=self.text_length,
            truncation=True,
            return_tensors="pt",
        )
        threads = query_thread_count() if len(texts) <= QUERY_TEXTS and self.device == "cpu" else 0
        with torch.inference_mode(), query_threads(threads or torch.get_num_threads()):
            input_ids = tokens["input_ids"].to(self.device)
            features = _pooled(self.model.get_text_features(input_ids=input_ids))
            return normalize_rows(features.float().cpu().numpy())
