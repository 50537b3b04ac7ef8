"""``classify``: zero-shot labels for files, stored ids, a filtered subset or the whole store."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from medsearch.errors import InvalidQuery, NotFound
from medsearch.labels.labelsets import LabelSet
from medsearch.labels.zeroshot import Classification, check_save_name, label_matrix, probabilities, summarize
from medsearch.query.ranking import allowed_ids
from medsearch.storage import queries
from medsearch.storage.scores import save_scores, stored_vectors

if TYPE_CHECKING:
    from medsearch.context import Context


def classify(ctx: Context, labels: LabelSet, targets: Sequence[str] = (), *, all_images: bool = False,
             where: Sequence[str] = (), exclusive: bool = False, save_as: str | None = None) -> list[Classification]:
    """Per-label probabilities for ``targets`` (files or ids), or the stored images matching ``where`` (or
    all of them with ``all_images``). ``save_as`` stores them as fields ``NAME.LABEL``. Raises
    InvalidQuery when there is nothing to classify."""
    if not targets and not all_images and not where:
        raise InvalidQuery("give image files or ids, --where, or --all")
    embedder = ctx.encoder
    matrix = label_matrix(ctx, labels)
    scale, bias = embedder.logit_scale, embedder.logit_bias
    results = [_one(ctx, target, labels, matrix, scale, bias, exclusive) for target in targets]
    if all_images or where:
        results += _stored(ctx, labels, matrix, where, exclusive, save_as)
    return results


def _one(ctx: Context, target: str, labels: LabelSet, matrix: np.ndarray, scale: float, bias: float,
         exclusive: bool) -> Classification:
    vector = ctx.vector_of(target)
    probs = probabilities(vector[None], matrix, scale, bias, exclusive)[0]
    image_id = int(target) if str(target).isdigit() and not Path(str(target)).exists() else None
    return summarize(labels, probs, image_id, str(target))


def _stored(ctx: Context, labels: LabelSet, matrix: np.ndarray, where: Sequence[str], exclusive: bool,
            save_as: str | None) -> list[Classification]:
    store, embedder = ctx.store, ctx.encoder
    if save_as:
        check_save_name(save_as)
    ctx.check_model()
    subset = allowed_ids(store, where)
    results, scored = [], []
    for ids, paths, vectors in stored_vectors(store, None if subset is None else subset.tolist()):
        probs = probabilities(vectors, matrix, embedder.logit_scale, embedder.logit_bias, exclusive)
        results += [summarize(labels, row, i, p) for i, p, row in zip(ids, paths, probs, strict=True)]
        scored.append((ids, probs))
    if save_as:
        source = f"zeroshot:{save_as}:{labels.digest()}:{embedder.revision}"
        save_scores(store, save_as, [f"{save_as}.{label.name}" for label in labels.labels], source, scored)
    return results


def classify_ids(ctx: Context, labels: LabelSet, ids: Sequence[int], exclusive: bool) -> list[Classification]:
    """Per-label probabilities of stored images by id (their stored vectors and paths; no file is read),
    one result per id in the given order. Raises NotFound naming every unknown id."""
    found = queries.embeddings(ctx.store, list(dict.fromkeys(ids)))
    missing = [str(i) for i in dict.fromkeys(ids) if i not in found]
    if missing:
        raise NotFound(f"No image with id {', '.join(missing)} in the store.")
    matrix = label_matrix(ctx, labels)
    embedder = ctx.encoder
    probs = probabilities(np.vstack([found[i][1] for i in ids]), matrix, embedder.logit_scale,
                          embedder.logit_bias, exclusive)
    return [summarize(labels, row, i, found[i][0]) for i, row in zip(ids, probs, strict=True)]
