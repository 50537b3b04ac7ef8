"""``ms.cohorts``: saved research cohorts, the one door the CLI, the HTTP API and Python use.

    with Medsearch.open("./medsearch-store") as ms:
        made = ms.cohorts.create("effusions", include=["text:pleural effusion>=0.6"])
        ms.cohorts.export("effusions", "csv", "effusions.csv")
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medsearch.cohorts import saved
from medsearch.cohorts.export import export

if TYPE_CHECKING:
    from medsearch.context import Context
    from medsearch.labels.labelsets import LabelSet


class Cohorts:
    """The cohort operations over one ``Context`` (``medsearch.cohorts`` does the work). Cohort writes
    (their own tables, one transaction each) are serialised by the service's lock."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def create(self, name: str, include: Sequence[str] = (), exclude: Sequence[str] = (),
               where: Sequence[str] = (), one_per: str | None = None,
               near_duplicates: float | None = None, unit: str = "image") -> dict[str, Any]:
        """Evaluate and save a new cohort of images, or (``unit`` series/study) of the units holding the
        passing images; its manifest with ``members``. Raises InvalidQuery (bad criteria, name taken, an
        unknown ``one_per`` column or unit), NotFound (an example image), ModelMismatch."""
        with self.ctx.writes:
            return saved.create(self.ctx, name, include, exclude, where, one_per, near_duplicates, unit)

    def create_discordant(self, name: str, labels: LabelSet, finding: str, direction: str = "both",
                          k: int | None = None, min_disagreement: float = 0.5, unit: str = "image") -> dict[str, Any]:
        """Evaluate and save a discordance cohort: the images (or studies) where the zero-shot score of
        ``finding`` (its prompts in ``labels``) and the report label disagree, ``direction`` model-positive,
        report-positive or both, strongest first, at most ``k`` (``medsearch.cohorts.discordance``). Raises
        InvalidQuery (unknown finding/direction/unit, no reports, one report class only, name taken),
        ModelMismatch."""
        with self.ctx.writes:
            return saved.create_discordant(self.ctx, name, labels, finding, direction, k, min_disagreement, unit)

    def refresh(self, name: str) -> dict[str, Any]:
        """Re-run a saved definition on the store as it is now; stores and returns a new run. Raises NotFound."""
        with self.ctx.writes:
            return saved.refresh(self.ctx, name)

    def show(self, name: str, run: int | None = None) -> dict[str, Any]:
        """The manifest of the latest run (or run number ``run``) with its members, best first. Raises NotFound."""
        return saved.show(self.ctx, name, run)

    def diff(self, name: str) -> dict[str, Any]:
        """Who joined and who left between the previous run and the latest. Raises NotFound."""
        return saved.diff(self.ctx, name)

    def list(self) -> list[dict[str, Any]]:
        """Every cohort: name, created date, number of runs, and the latest run's size and generation."""
        return saved.list_cohorts(self.ctx)

    def delete(self, name: str) -> None:
        """Delete a cohort with its runs and members. Raises NotFound."""
        with self.ctx.writes:
            saved.delete(self.ctx, name)

    def export(self, name: str, fmt: str, output: str | Path, columns: Sequence[str] = (), copy: bool = False,
               run: int | None = None) -> dict[str, Any]:
        """Write a cohort as csv, jsonl, uids or a links folder (``medsearch.cohorts.export``). Raises
        InvalidQuery, NotFound."""
        return export(self.ctx, name, fmt, output, columns, copy, run)
