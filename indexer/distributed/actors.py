"""What runs inside Ray: the read tasks and the embedding actor. Rows are dicts of numpy columns; a file
travels as its pickled ``Loaded`` (pixels dropped once embedded) beside its vectors as float32 bytes."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from medsearch.indexer.load import Loaded
from medsearch.indexer.model_loading import load_embedder
from medsearch.indexer.pipeline import embeddable, has_frames
from medsearch.indexer.workers import Limits, ordered_map

Rows = dict[str, np.ndarray]


@dataclass(frozen=True)
class ModelSpec:
    """How an actor loads the driver's model: ``model`` (hub id or folder, reachable from every node),
    ``device`` (auto: a GPU when the actor has one), ``precision`` (as resolved by the driver) and the
    ``revision`` the driver bound the store to (an actor whose copy differs refuses to embed)."""

    model: str
    device: str
    precision: str
    revision: str
    threads: int = 1


def read_rows(rows: Rows, load: Any, failed: Any, options: Any, preprocessor: Any, limits: Limits) -> Rows:
    """Read task: ``rows["task"]`` (pickled tasks) -> ``rows["loaded"]`` (pickled ``Loaded``). The files are
    decoded in a child process under ``limits``, as the in-process pipeline does (``medsearch.indexer.workers``): a
    file that crashes the decoder, overruns its time or cannot be read becomes a ``Loaded`` with its error
    and costs nothing else (a crash in the task itself would make Ray retry it without end)."""
    tasks = [pickle.loads(blob) for blob in rows["task"]]
    loads = ordered_map(load, tasks, 1, failed, options, preprocessor, limits=limits, in_flight=2)
    return {"loaded": np.array([pickle.dumps(loaded) for _task, loaded in loads], dtype=object)}


class EmbedFiles:
    """The actor's callable: loads the model once, then embeds batches of ``read_rows``' output into
    ``{"loaded": pickled Loaded without pixels, "vectors": (frames * dim) float32 bytes}`` per file."""

    def __init__(self, spec: ModelSpec, batch_size: int) -> None:
        import torch

        torch.set_num_threads(max(1, spec.threads))
        self.embedder = load_embedder(spec.model, spec.device, spec.precision)
        if self.embedder.revision != spec.revision:
            raise RuntimeError(f"this node's copy of {spec.model} is revision {self.embedder.revision}, "
                               f"the store's is {spec.revision}")
        self.batch_size = batch_size

    def __call__(self, rows: Rows) -> Rows:
        files: list[Loaded] = [pickle.loads(blob) for blob in rows["loaded"]]
        pixels = [frame[1] for loaded in embeddable(files) for frame in loaded.frames]
        chunks = [self.embedder.embed_images(np.stack(pixels[start : start + self.batch_size]))
                  for start in range(0, len(pixels), self.batch_size)]
        matrix = np.vstack(chunks) if chunks else np.empty((0, self.embedder.dim), dtype=np.float32)
        out_files, out_vectors, row = [], [], 0
        for loaded in files:
            count = len(loaded.frames) if has_frames(loaded) else 0
            out_vectors.append(matrix[row : row + count].astype(np.float32).tobytes())
            out_files.append(pickle.dumps(without_pixels(loaded)))
            row += count
        return {"loaded": np.array(out_files, dtype=object), "vectors": np.array(out_vectors, dtype=object)}


def without_pixels(loaded: Loaded) -> Loaded:
    """``loaded`` with each frame's pixels replaced by an empty array (they are not needed after embedding)."""
    empty = np.empty(0, dtype=np.float32)
    return replace(loaded, frames=[(number, empty, metadata) for number, _pixels, metadata in loaded.frames])


def unpack(row: dict[str, Any], dim: int) -> tuple[Loaded, np.ndarray]:
    """One output row -> (its ``Loaded``, (frames, dim) float32 vectors)."""
    vectors = np.frombuffer(row["vectors"], dtype=np.float32).reshape(-1, dim)
    return pickle.loads(row["loaded"]), vectors
