"""``ms.learning``: probes, patient-grouped splits, the leakage audit (``medsearch.learn`` does the work) and
the zero-shot AUC table against report labels; the one door the CLI, the HTTP API and Python use. Writes
(probes, splits) are serialised by the context's ``writes`` lock."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from medsearch.learn import audit, probe, split

if TYPE_CHECKING:
    from medsearch.context import Context
    from medsearch.labels.labelsets import LabelSet
    from medsearch.labels.report_truth import ReportEvaluation
    from medsearch.learn.audit import Audit


class Learning:
    """Linear probes, splits and the leakage audit over one ``Context``."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def train_probe(self, name: str, positives: Sequence[str], negatives: Sequence[str] = (),
                    more_like_these: int = 0, exclude: Sequence[int] = (), **options: Any) -> dict[str, Any]:
        """Train and save a probe, cross-validated by patient (``medsearch.learn.probe.train``'s options:
        prompt, group_by, folds, seed); its report, with the ``more_like_these`` images it scores highest
        (``exclude``'s ids left out) when asked. Raises InvalidQuery, NotFound."""
        with self.ctx.writes:
            report = probe.train(self.ctx, name, positives, negatives, **options)
        if more_like_these:
            report["more_like_these"] = probe.rank(self.ctx, name, more_like_these, exclude=exclude)
        return report

    def apply_probe(self, name: str, where: Sequence[str] = (), save_as: str | None = None) -> dict[str, Any]:
        """Score the stored images (those ``where`` selects) with a saved probe, optionally saving the scores
        as a field. Raises NotFound, InvalidQuery."""
        with self.ctx.writes:
            return probe.apply(self.ctx, name, where, save_as)

    def rank_probe(self, name: str, k: int = 20, exclude: Sequence[int] = ()) -> list[dict[str, Any]]:
        """The ``k`` images a saved probe scores highest, ``exclude`` left out. Raises NotFound."""
        return probe.rank(self.ctx, name, k, exclude)

    def probes(self) -> list[dict[str, Any]]:
        """Every saved probe with its figures."""
        return probe.probes(self.ctx)

    def evaluate_reports(self, labels: LabelSet, group_by: str = "patient", rounds: int = 1000, seed: int = 0,
                         min_positives: int = 5) -> ReportEvaluation:
        """Your archive's own AUC table: per finding of ``labels``, the zero-shot AUC against the report
        labels of each image's study (uncertain left out and counted), with a 95 % interval that resamples
        ``group_by`` groups (patients), seeded (``medsearch.labels.report_truth``). Raises InvalidQuery (no
        reports, no labelled image, unknown column), ModelMismatch."""
        from medsearch.labels.report_truth import evaluate_reports

        return evaluate_reports(self.ctx, labels, group_by, rounds, seed, min_positives)

    def split(self, name: str, by: str = "patient", ratios: Sequence[float] = (0.7, 0.15, 0.15),
              names: Sequence[str] | None = None, stratify: str | None = None, seed: int = 0,
              scope: Sequence[str] = (), missing: str = "refuse") -> dict[str, Any]:
        """Split images by patient (or any group), stratified and seeded, into a field ``name``; images
        without a ``by`` value: ``missing`` refuse, leave-out or alone (``medsearch.learn.split.split``).
        Raises InvalidQuery."""
        with self.ctx.writes:
            return split.split(self.ctx, name, by, ratios, names, stratify, seed, scope, missing)

    def split_counts(self, name: str) -> dict[str, Any]:
        """The images and groups in each split of a saved split field. Raises NotFound."""
        return split.counts(self.ctx, name)

    def audit(self, split_field: str, scope: tuple[str, ...] = (), **options: Any) -> Audit:
        """The leakage audit of a split (``medsearch.learn.audit.audit``'s options: patient, k, threshold,
        seed, samples). Raises InvalidQuery, NotFound."""
        return audit.audit(self.ctx, split_field, scope, **options)
