"""``classify``: zero-shot labels for files, stored ids, a filtered subset or the whole store."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from search.labelsets import LabelSet
from search.ranking import allowed_ids
from search.zeroshot import (
    Classification,
    forget_other_runs,
    label_matrix,
    probabilities,
    save_scores,
    stored_vectors,
    summarize,
)
from storage.errors import InvalidQuery


def classify(engine: Any, labels: LabelSet, targets: Sequence[str] = (), *, all_images: bool = False,
             where: Sequence[str] = (), exclusive: bool = False, save_as: str | None = None) -> list[Classification]:
    """Per-label probabilities for ``targets`` (files or ids), or the stored images matching ``where`` (or
    all of them with ``all_images``). ``save_as`` stores them as fields ``NAME.LABEL``. Raises
    InvalidQuery when there is nothing to classify."""
    if not targets and not all_images and not where:
        raise InvalidQuery("give image files or ids, --where, or --all")
    embedder = engine.embedder
    matrix = label_matrix(engine.text_vectors, labels)
    scale, bias = embedder.logit_scale, embedder.logit_bias
    results = [_one(engine, target, labels, matrix, scale, bias, exclusive) for target in targets]
    if all_images or where:
        results += _stored(engine, labels, matrix, where, exclusive, save_as)
    return results


def _one(engine: Any, target: str, labels: LabelSet, matrix: np.ndarray, scale: float, bias: float,
         exclusive: bool) -> Classification:
    vector = engine.query_vector(target)
    probs = probabilities(vector[None], matrix, scale, bias, exclusive)[0]
    image_id = int(target) if str(target).isdigit() and not Path(str(target)).exists() else None
    return summarize(labels, probs, image_id, str(target))


def _stored(engine: Any, labels: LabelSet, matrix: np.ndarray, where: Sequence[str], exclusive: bool,
            save_as: str | None) -> list[Classification]:
    store, embedder = engine.store, engine.embedder
    engine.check_model()
    subset = allowed_ids(store, where)
    source = f"zeroshot:{save_as}:{labels.digest()}:{embedder.revision}"
    results = []
    with store.session() as session:
        if save_as:
            forget_other_runs(session, save_as, source)
        chunks = stored_vectors(session, None if subset is None else subset.tolist())
        for ids, paths, vectors in chunks:
            probs = probabilities(vectors, matrix, embedder.logit_scale, embedder.logit_bias, exclusive)
            results += [summarize(labels, row, i, p) for i, p, row in zip(ids, paths, probs, strict=True)]
            if save_as:
                save_scores(session, save_as, labels, source, ids, probs)
    return results
