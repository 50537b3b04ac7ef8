"""A repeated prompt costs no model call: text vectors are cached in memory and in the store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from medsearch.query.textcache import TextCache
from medsearch.storage.store import ModelRecord, Store


def test_prompts_are_embedded_once_per_model(tmp_path: Path, tiny_embedder: Any) -> None:
    store = Store.open(tmp_path / "s", create=True, writable=True)
    store.bind_model(ModelRecord(tiny_embedder.model_id, tiny_embedder.revision, tiny_embedder.dim, "p"))
    first = TextCache(store, tiny_embedder)
    vectors = first.vectors(["pleural effusion", "pneumothorax", "pleural effusion"])
    assert first.model_calls == 1 and vectors.shape == (3, tiny_embedder.dim)
    np.testing.assert_array_equal(vectors[0], vectors[2])
    first.vectors(["pneumothorax"])
    assert first.model_calls == 1  # from memory

    again = TextCache(store, tiny_embedder)  # a new process: empty memory, same store
    np.testing.assert_allclose(again.vectors(["pleural effusion"])[0], vectors[0])
    assert again.model_calls == 0
    np.testing.assert_allclose(vectors[0], tiny_embedder.embed_texts(["pleural effusion"])[0], atol=1e-6)

    other_model = TextCache(store, tiny_embedder)
    other_model.key = "another-model@rev"  # vectors of one model never serve another
    other_model.vectors(["pleural effusion"])
    assert other_model.model_calls == 1
    store.close()
