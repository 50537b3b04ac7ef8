"""Few-shot probes: a logistic regression on the stored vectors of labelled images ("find more like
these"), cross-validated by patient, with the zero-shot AUC of a prompt for the same label beside it.

    from medsearch.learn import probe
    report = probe.train(ctx, "effusion", ["field:effusion"], ["where:effusion = 0"], prompt="pleural effusion")
    probe.apply(ctx, "effusion")          # field "effusion" with p per image, usable in --where

A probe is saved in the store with the model record it was trained on and refused on another model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from medsearch.errors import InvalidQuery, StoreError
from medsearch.labels import metrics
from medsearch.labels.interval import grouped_auc_interval
from medsearch.learn.crossval import (
    fit_probe,
    grouped_folds,
    out_of_fold,
    probe_probabilities,
)
from medsearch.learn.selection import all_ids, paths_of, select_ids, vectors_of
from medsearch.query.ranking import group_keys
from medsearch.storage.learn import check_field_name, list_probes, load_probe, replace_field, save_probe

if TYPE_CHECKING:
    from medsearch.context import Context


def train(ctx: Context, name: str, positives: Sequence[str], negatives: Sequence[str] = (), *,
          prompt: str | None = None, group_by: str = "patient", folds: int = 5, seed: int = 0) -> dict[str, Any]:
    """Train, cross-validate (by ``group_by``) and save probe ``name``. ``negatives`` default to every
    other image. Returns the report: counts, ``cv_auc`` with ``cv_auc_ci`` (95 %, groups resampled),
    ``zero_shot_auc`` (cosine to ``prompt``, default the name) and ``fold_ids``. Raises InvalidQuery,
    NotFound, ModelMismatch."""
    check_field_name(name)
    ctx.check_model()
    positive = select_ids(ctx, positives)
    negative = select_ids(ctx, negatives) if negatives else np.setdiff1d(all_ids(ctx), positive)
    if np.intersect1d(positive, negative).size:
        raise InvalidQuery(f"{np.intersect1d(positive, negative).size} images are both positive and negative")
    ids = np.concatenate([positive, negative])
    labels = np.r_[np.ones(len(positive), np.int64), np.zeros(len(negative), np.int64)]
    vectors = vectors_of(ctx, ids)
    groups = group_keys(ctx.store, ids, group_by)
    fold = grouped_folds(labels, groups, folds, seed)
    held_out = out_of_fold(vectors, labels, fold)
    text = prompt or name.replace("_", " ").replace("-", " ")
    zero_shot = vectors @ ctx.text_vectors([text])[0]
    report = {
        "name": name, "positives": len(positive), "negatives": len(negative), "group_by": group_by,
        "groups": len(set(groups.tolist())), "folds": int(fold.max()) + 1, "seed": seed,
        "definition": {"positives": list(positives), "negatives": list(negatives)},
        "cv_auc": metrics.roc_auc(labels, held_out), "cv_auc_ci": grouped_auc_interval(labels, held_out, groups),
        "zero_shot_prompt": text, "zero_shot_auc": metrics.roc_auc(labels, zero_shot),
        "zero_shot_auc_ci": grouped_auc_interval(labels, zero_shot, groups),
    }
    weights, bias = fit_probe(vectors, labels)
    record = ctx.store.model_record()
    if record is None:
        raise StoreError("the store has no images yet: index some before training a probe")
    save_probe(ctx.store, name, record, weights, bias, report)
    return {**report, "fold_ids": [ids[fold == f].tolist() for f in range(int(fold.max()) + 1)]}


def apply(ctx: Context, name: str, where: Sequence[str] = (), save_as: str | None = None) -> dict[str, Any]:
    """Score the images matching ``where`` (all by default) with probe ``name`` and save the
    probabilities as number field ``save_as`` (default: the probe's name), replacing its older values.
    Raises NotFound, ModelMismatch (the probe was trained on another model), InvalidQuery."""
    field = check_field_name(save_as or name)
    weights, bias, _report = _probe(ctx, name)
    ids = select_ids(ctx, where) if where else all_ids(ctx)
    scores = probe_probabilities(vectors_of(ctx, ids), weights, bias)
    replace_field(ctx.store, field, f"probe:{name}", "number", dict(zip(ids.tolist(), scores.tolist(), strict=True)))
    return {"probe": name, "field": field, "images": len(ids), "at_least_0.5": int((scores >= 0.5).sum())}


def rank(ctx: Context, name: str, k: int = 20, exclude: Sequence[int] = ()) -> list[dict[str, Any]]:
    """The ``k`` images the probe scores highest, ``exclude`` left out: [{id, path, probability}]."""
    weights, bias, _report = _probe(ctx, name)
    ids = np.setdiff1d(all_ids(ctx), np.asarray(list(exclude), dtype=np.int64))
    scores = probe_probabilities(vectors_of(ctx, ids), weights, bias)
    best = np.argsort(-scores, kind="stable")[:k]
    paths = paths_of(ctx, ids[best].tolist())
    return [{"id": int(ids[n]), "path": paths[int(ids[n])], "probability": float(scores[n])} for n in best]


def probes(ctx: Context) -> list[dict[str, Any]]:
    """Every saved probe with its report."""
    return list_probes(ctx.store)


def _probe(ctx: Context, name: str) -> tuple[np.ndarray, float, dict[str, Any]]:
    return load_probe(ctx.store, name)
