"""``evaluate --truth-from-reports``: the zero-shot AUC of a label set's prompts on your own archive, with
the report labels of each image's study as the truth.

Per finding of the label set: the images whose study's report says the finding is ``positive`` or
``negative`` are scored with the label's prompt ensemble (the model's sigmoid, as ``classify``); images
whose report calls it ``uncertain`` are left out and counted; images whose report does not mention it have
no truth for it and are left out. The ROC AUC comes with a percentile bootstrap interval that resamples whole patients
(``group_by``, default ``patient``: one patient's images are drawn together, so images of one patient do
not narrow the interval as if they were independent; an image without a patient is a group of its own),
seeded. A finding with fewer than ``min_positives`` positives or negatives gets no AUC, only a note.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from medsearch.errors import InvalidQuery
from medsearch.labels import metrics
from medsearch.labels.interval import grouped_auc_interval
from medsearch.labels.labelsets import LabelSet
from medsearch.labels.zeroshot import label_matrix, probabilities
from medsearch.query.ranking import group_keys
from medsearch.storage import queries

if TYPE_CHECKING:
    from medsearch.context import Context

POSITIVE, NEGATIVE, UNCERTAIN = "positive", "negative", "uncertain"
MIN_POSITIVES = 5
"""Fewer positives (or negatives) than this and a finding gets a note instead of an AUC."""
LEVEL = 0.95


@dataclass
class ReportEvaluation:
    """The table: per finding positives, negatives, uncertain, patients, auc, auc_low, auc_high and a
    note (why there is no AUC or no interval); ``images``: the images with a positive or negative report
    label for some finding; ``reports``: the studies with a report in the store."""

    label_set: str
    images: int
    patients: int
    group_by: str
    rounds: int
    seed: int
    level: float = LEVEL
    min_positives: int = MIN_POSITIVES
    reports: int = 0
    findings: dict[str, dict[str, Any]] = field(default_factory=dict)
    curves: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Scored:
    """One finding's images with a positive or negative report label: ids, 0/1 truth, probabilities."""

    ids: np.ndarray
    truth: np.ndarray
    probabilities: np.ndarray


def report_labels(ctx: Context, finding: str) -> dict[int, str]:
    """{image id: positive | negative | uncertain} from the reports of each image's study. Raises
    InvalidQuery when the store holds no report."""
    reports = ctx.store.reports
    if not reports.count():
        raise InvalidQuery("this store holds no reports: import them first (`medsearch import-reports "
                           "reports.csv`, or index a folder with DICOM structured reports)")
    return dict(reports.image_labels(finding))


def score_findings(ctx: Context, labels: LabelSet, polarities: dict[str, dict[int, str]]) -> dict[str, Scored]:
    """Each label's images with a positive/negative polarity, scored with the label's prompts (one
    matrix product for all labels)."""
    wanted = sorted({i for found in polarities.values() for i, p in found.items() if p in (POSITIVE, NEGATIVE)})
    rows = queries.embeddings(ctx.store, wanted)
    ids = np.array([i for i in wanted if i in rows], dtype=np.int64)
    if not len(ids):
        return {label.name: _empty() for label in labels.labels}
    vectors = np.vstack([rows[int(i)][1] for i in ids])
    probs = probabilities(vectors, label_matrix(ctx, labels), ctx.encoder.logit_scale,
                          ctx.encoder.logit_bias)
    out = {}
    for column, label in enumerate(labels.labels):
        found = polarities.get(label.name, {})
        keep = np.array([found.get(int(i)) in (POSITIVE, NEGATIVE) for i in ids], dtype=bool)
        truth = np.array([found[int(i)] == POSITIVE for i in ids[keep]], dtype=int)
        out[label.name] = Scored(ids[keep], truth, probs[keep, column])
    return out


def _empty() -> Scored:
    return Scored(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=int), np.zeros(0))


def evaluate_reports(ctx: Context, labels: LabelSet, group_by: str = "patient", rounds: int = 1000, seed: int = 0,
                     min_positives: int = MIN_POSITIVES) -> ReportEvaluation:
    """The per-finding AUC table against report labels (see the module). Raises InvalidQuery (no reports,
    no image with a report label, an unknown ``group_by`` column, rounds < 100), ModelMismatch."""
    if rounds < 100:
        raise InvalidQuery(f"--rounds must be at least 100 for a 95 % interval, not {rounds}")
    ctx.check_model()
    polarities = {label.name: report_labels(ctx, label.name) for label in labels.labels}
    scored = score_findings(ctx, labels, polarities)
    ids = np.unique(np.concatenate([s.ids for s in scored.values()]))
    if not len(ids):
        raise InvalidQuery(f"no stored image has a positive or negative report label for a finding of "
                           f"{labels.name or 'the label set'} ({', '.join(labels.names)})")
    groups = dict(zip(ids.tolist(), group_keys(ctx.store, ids, group_by).tolist(), strict=True))
    report = ReportEvaluation(labels.name or "labels", len(ids), len(set(groups.values())), group_by, rounds, seed,
                              min_positives=min_positives, reports=ctx.store.reports.count())
    for name, found in scored.items():
        counts = _counts(polarities[name], found)
        figures = _figures(found, np.array([groups[int(i)] for i in found.ids], dtype=object), report)
        report.findings[name] = {**counts, **figures}
        if figures["auc"] is not None:
            fpr, tpr, _ = metrics.roc_curve(found.truth, found.probabilities)
            report.curves[name] = (fpr.tolist(), tpr.tolist())
    return report


def _counts(polarity: dict[int, str], found: Scored) -> dict[str, int]:
    positives = int(found.truth.sum())
    return {"positives": positives, "negatives": int(len(found.truth) - positives),
            "uncertain": sum(1 for p in polarity.values() if p == UNCERTAIN)}


def _figures(found: Scored, groups: np.ndarray, report: ReportEvaluation) -> dict[str, Any]:
    """auc, auc_low, auc_high, patients and note (why there is no AUC, or why no interval)."""
    positives = int(found.truth.sum())
    negatives = len(found.truth) - positives
    figures: dict[str, Any] = {"auc": None, "auc_low": None, "auc_high": None, "patients": len(set(groups.tolist())),
                               "note": None}
    if min(positives, negatives) < report.min_positives:
        which = "positives" if positives < report.min_positives else "negatives"
        figures["note"] = f"too few {which} ({min(positives, negatives)} < {report.min_positives}) for an AUC"
        return figures
    figures["auc"] = metrics.roc_auc(found.truth, found.probabilities)
    try:
        figures["auc_low"], figures["auc_high"] = grouped_auc_interval(found.truth, found.probabilities, groups,
                                                                       report.rounds, report.seed, report.level)
    except InvalidQuery as exc:
        figures["note"] = str(exc)
    return figures


def plot_aucs(report: ReportEvaluation, path: Any) -> None:
    """Draw each finding's ROC curve (left) and its AUC with the interval by patient (right) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (roc, bars) = plt.subplots(1, 2, figsize=(12, 6))
    for name, (fpr, tpr) in report.curves.items():
        roc.plot(fpr, tpr, label=f"{name} (AUC {report.findings[name]['auc']:.3f})")
    roc.plot([0, 1], [0, 1], linestyle=":", color="grey")
    roc.set(xlabel="false positive rate", ylabel="true positive rate", title="Zero-shot ROC against report labels")
    roc.legend(loc="lower right", fontsize="small")
    shown = [name for name in report.findings if report.findings[name]["auc"] is not None]
    aucs = [report.findings[name]["auc"] for name in shown]
    low = [a - (report.findings[n]["auc_low"] if report.findings[n]["auc_low"] is not None else a)
           for n, a in zip(shown, aucs, strict=True)]
    high = [(report.findings[n]["auc_high"] if report.findings[n]["auc_high"] is not None else a) - a
            for n, a in zip(shown, aucs, strict=True)]
    bars.errorbar(aucs, range(len(shown)), xerr=[low, high], fmt="o", capsize=3)
    bars.set_yticks(range(len(shown)), shown)
    bars.axvline(0.5, linestyle=":", color="grey")
    bars.set(xlabel=f"AUC ({report.level:.0%} interval, patients resampled)", xlim=(0, 1), title="AUC by finding")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
