"""Discordance cohorts: the images (or studies) where the model and the report disagree about a finding,
for quality review and for finding label noise.

The model's score is the zero-shot probability of the finding's prompt ensemble (as ``classify``); the
report's label is its study's (``positive`` / ``negative``; ``uncertain`` and unmentioned are left out).
The raw probability is not calibrated per finding (a finding's positives may all score below 0.5), so it
is calibrated on the archive itself: a logistic fit of the report labels on the score's logit (Platt
scaling, with Platt's smoothed targets so that a perfectly separating score still gives a finite fit;
the slope is kept >= 0, so a higher score never means less likely positive). The calibrated
probability q is how likely a study with that score is report-positive; how strongly an item disagrees
with its report is then

- ``model-positive`` (report negative): q;
- ``report-positive`` (report positive): 1 - q.

Members are the items at or above ``min_disagreement`` (default 0.5: the calibrated model finds the
other label more likely than the report's), strongest first (then the lower id), at most ``k``. Because
q is fitted to the reports, a few wrong reports barely move it; with a model that cannot tell the
finding (AUC near 0.5) q stays near the finding's prevalence, and every report-positive item of a rare
finding then disagrees, weakly: the ranking still puts the lowest-scored first. With ``unit="study"`` a
study's score is its highest-scoring image's (a study looks positive when any image does) and the study
is the member, represented by that image.

Everything a refresh needs is the definition: the finding, the label's prompts (not a file name),
direction, threshold, k and unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from medsearch.cohorts.units import unit_members
from medsearch.errors import InvalidQuery
from medsearch.labels.labelsets import Label, LabelSet
from medsearch.labels.report_truth import NEGATIVE, POSITIVE, UNCERTAIN, report_labels, score_findings
from medsearch.storage import queries, units

if TYPE_CHECKING:
    from medsearch.context import Context

DIRECTIONS = ("model-positive", "report-positive", "both")
UNITS = ("image", "study")
RULE = ("score: how strongly model and report disagree: the zero-shot probability calibrated on the report labels "
        "(logistic fit on its logit, Platt's targets, slope >= 0) for a report-negative item, 1 minus it for a "
        "report-positive one; probability: the model's zero-shot probability of the finding")


@dataclass(frozen=True)
class Item:
    """One scored item: its image id (a study's: its best image), 0/1 report truth, probability."""

    image_id: int
    truth: int
    probability: float
    key: str


def definition(labels: LabelSet, finding: str, direction: str = "both", k: int | None = None,
               min_disagreement: float = 0.5, unit: str = "image") -> dict[str, Any]:
    """The saved definition of a discordance cohort (the finding's prompts copied, so that refresh does not
    depend on a file). Raises InvalidQuery (unknown finding, direction or unit; k < 1; threshold not in [0, 1])."""
    if finding not in labels.names:
        raise InvalidQuery(f"{finding!r} is not a label of {labels.name or 'the label set'} "
                           f"({', '.join(labels.names)})")
    if direction not in DIRECTIONS:
        raise InvalidQuery(f"unknown --direction {direction!r}; expected one of {', '.join(DIRECTIONS)}")
    if unit not in UNITS:
        raise InvalidQuery(f"a discordance cohort is of images or studies, not {unit!r}")
    if k is not None and k < 1:
        raise InvalidQuery(f"--k must be at least 1, not {k}")
    if not 0.0 <= min_disagreement <= 1.0:
        raise InvalidQuery(f"--min-disagreement is a share between 0 and 1, not {min_disagreement}")
    label = next(x for x in labels.labels if x.name == finding)
    return {"discordant": {"finding": finding, "direction": direction, "label_set": labels.name,
                           "prompts": list(label.prompts), "k": k, "min_disagreement": min_disagreement},
            "include": [], "exclude": [], "where": [], "one_per": None, "near_duplicates": None, "unit": unit}


def calibrated(truth: np.ndarray, scores: np.ndarray, iterations: int = 100) -> np.ndarray:
    """The probability of a positive report given each score: a logistic fit of the 0/1 ``truth`` on the
    logit of the ``scores`` (probabilities), by Newton's method, with Platt's targets (N+ + 1) / (N+ + 2)
    and 1 / (N- + 2); a fitted slope below 0 is replaced by 0 (the prevalence alone). Both classes needed."""
    logits = np.log(np.clip(scores, 1e-12, 1.0)) - np.log(np.clip(1.0 - scores, 1e-12, 1.0))
    spread = float(logits.std()) or 1.0
    x = np.column_stack([(logits - logits.mean()) / spread, np.ones_like(logits)])
    positives = int(truth.sum())
    target = np.where(truth == 1, (positives + 1) / (positives + 2), 1 / (len(truth) - positives + 2))
    weights = np.array([0.0, float(np.log(target.mean() / (1 - target.mean())))])
    for _step in range(iterations):
        q = 1.0 / (1.0 + np.exp(-(x @ weights)))
        hessian = (x * (q * (1 - q))[:, None]).T @ x + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, x.T @ (q - target))
        weights = weights - step
        if np.abs(step).max() < 1e-10:
            break
    if weights[0] < 0:
        weights = np.array([0.0, float(np.log(target.mean() / (1 - target.mean())))])
    return 1.0 / (1.0 + np.exp(-(x @ weights)))


def disagreement(truth: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Per item, how strongly its score disagrees with its 0/1 report truth: the calibrated probability
    (``calibrated``) for a report-negative item, 1 minus it for a report-positive one."""
    q = calibrated(truth, scores)
    return np.where(truth == 1, 1.0 - q, q)


def evaluate(ctx: Context, spec: dict[str, Any], unit: str) -> dict[str, Any]:
    """The manifest entries of a discordance run: criteria, score_rule, funnel, collapsed, count, members
    (and for studies the unit entries), and ``discordance`` (each member's report label and direction).
    Raises InvalidQuery (no reports, one report class only), ModelMismatch."""
    ctx.check_model()
    finding = spec["finding"]
    polarity = report_labels(ctx, finding)
    labels = LabelSet((Label(finding, tuple(spec["prompts"])),), spec["label_set"])
    scored = score_findings(ctx, labels, {finding: polarity})[finding]
    items = [Item(int(i), int(t), float(p), str(int(i)))
             for i, t, p in zip(scored.ids, scored.truth, scored.probabilities, strict=True)]
    uncertain = sum(1 for p in polarity.values() if p == UNCERTAIN)
    funnel = [_step(f"images with a {POSITIVE} or {NEGATIVE} report label for {finding} ({uncertain} uncertain "
                    "left out)", len(items), len(items))]
    if unit == "study":
        items = _by_study(ctx, items)
        funnel.append(_step("their studies (each scored by its highest-scoring image)", len(items),
                            funnel[-1]["count"]))
    chosen = _ranked(finding, items, spec)
    funnel.append(_step(f"model and report disagree ({spec['direction']}, disagreement >= "
                        f"{spec['min_disagreement']})", len(chosen), funnel[-1]["count"]))
    if spec["k"] is not None and len(chosen) > spec["k"]:
        chosen = chosen[: spec["k"]]
        funnel.append(_step(f"the {spec['k']} strongest", len(chosen), funnel[-1]["count"]))
    return _entries(ctx, chosen, funnel, spec, unit)


def _step(text: str, count: int, before: int) -> dict[str, Any]:
    return {"step": text, "count": count, "removed": before - count}


def _by_study(ctx: Context, items: list[Item]) -> list[Item]:
    """One item per study: its highest-scoring image (images without a study UID are left out)."""
    of_image = units.units_of_images(ctx.store, "study", [item.image_id for item in items])
    best: dict[str, Item] = {}
    for item in items:
        uid = of_image.get(item.image_id, (None, 0))[0]
        if uid is not None and (uid not in best or item.probability > best[uid].probability):
            best[uid] = Item(item.image_id, item.truth, item.probability, uid)
    return list(best.values())


def _ranked(finding: str, items: list[Item], spec: dict[str, Any]) -> list[tuple[Item, float]]:
    """The disagreeing items, strongest first, with their disagreement. Raises InvalidQuery with one
    report class only."""
    truth = np.array([item.truth for item in items], dtype=int)
    if truth.sum() in (0, len(truth)):
        which = NEGATIVE if truth.sum() else POSITIVE
        raise InvalidQuery(f"no stored image has a {which} report label for {finding}: disagreement is measured "
                           "against the other report class, so both are needed")
    strength = disagreement(truth, np.array([item.probability for item in items]))
    wanted = {"model-positive": (0,), "report-positive": (1,), "both": (0, 1)}[spec["direction"]]
    kept = [(item, float(s)) for item, s in zip(items, strength, strict=True)
            if item.truth in wanted and s >= spec["min_disagreement"]]
    kept.sort(key=lambda pair: (-pair[1], pair[0].image_id))
    return kept


def _entries(ctx: Context, chosen: list[tuple[Item, float]], funnel: list[dict[str, Any]], spec: dict[str, Any],
             unit: str) -> dict[str, Any]:
    details = {item.key: {"report": POSITIVE if item.truth else NEGATIVE, "disagrees":
                          "report-positive" if item.truth else "model-positive"} for item, _s in chosen}
    ordered = [(item.image_id, strength, item.probability) for item, strength in chosen]
    entries: dict[str, Any] = {
        "criteria": [{"discordant": spec["finding"], "direction": spec["direction"], "prompts": spec["prompts"]}],
        "score_rule": RULE, "funnel": funnel, "collapsed": [], "count": len(chosen),
        "discordance": {"finding": spec["finding"], "label_set": spec["label_set"],
                        "reports": ctx.store.reports.count(), "members": details}}
    if unit == "study":
        members = unit_members(ctx, ordered, "study")
        return {**entries, "unit": "study", "count": len(members), "images": sum(m["size"] for m in members),
                "members": members}
    paths = queries.paths_by_id(ctx.store, [i for i, _s, _p in ordered])
    return {**entries, "members": [{"rank": rank, "id": i, "path": paths[i], "score": s, "probability": p}
                                   for rank, (i, s, p) in enumerate(ordered, start=1)]}


def with_details(manifest: dict[str, Any]) -> dict[str, Any]:
    """A stored discordance run's members with their ``report`` label and ``disagrees`` direction put back;
    other manifests as they are."""
    details = manifest.get("discordance", {}).get("members")
    if not details:
        return manifest
    members = [{**m, **details.get(str(m.get("key", m.get("id"))), {})} for m in manifest["members"]]
    return {**manifest, "members": members}
