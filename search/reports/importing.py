"""Import a CSV of reports into a store: parse (``medsearch.reports.csv_import``), match each row to its
study, label it (``medsearch.reports.reading``) and store every good row in one transaction.

Matching: a ``study_uid`` is the study itself (its images may be indexed later); an ``accession`` is
hashed with the store's patient key (``medsearch.storage.patient_key``) and must match the images of one
indexed study (their ``accession_key``); a ``path`` must name an indexed image (relative paths are read
from the CSV's folder), whose study is its StudyInstanceUID, or the image alone when it has none."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from medsearch.errors import InvalidQuery, MedsearchError
from medsearch.indexer.dicom_meta import accession_key
from medsearch.reports.csv_import import CsvRow, ParsedCsv, parse_reports_csv
from medsearch.reports.reading import ReportReader
from medsearch.storage.patient_key import patient_secret
from medsearch.storage.report_types import StudyKey
from medsearch.storage.reports import ReportRecord
from medsearch.storage.store import Store

MAX_LISTED = 100
"""At most this many bad rows are listed (all are counted)."""


@dataclass
class ImportSummary:
    """What an import did: rows read, reports stored (``replaced``: of studies that had one), the bad rows
    (line and reason, the first ``MAX_LISTED``; ``bad`` counts all), the key column, whether the text was
    kept, and per finding how many studies were labelled positive / negative / uncertain."""

    rows: int = 0
    stored: int = 0
    replaced: int = 0
    bad: int = 0
    bad_rows: list[dict[str, Any]] = field(default_factory=list)
    key: str = ""
    key_column: str = ""
    kept_text: bool = False
    label_set: str = ""
    labels: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def import_reports_csv(store: Store, data: bytes, reader: ReportReader, *, key: str | None = None,
                       base: Path | None = None, source: str = "the CSV",
                       patient_key: bytes | None = None) -> ImportSummary:
    """Import a report CSV's bytes (``base``: the folder relative paths are read from; None: only absolute
    paths; ``patient_key``: as ``medsearch.storage.patient_key.patient_secret`` takes it). Raises InvalidQuery for
    a bad file or when no row is good (nothing stored then), StoreError for a patient key that is not the
    store's."""
    parsed = parse_reports_csv(data, key, source)
    summary = ImportSummary(key=parsed.key, key_column=parsed.key_column, kept_text=reader.keep_text,
                            label_set=reader.label_set)
    bad = list(parsed.bad)
    records: list[ReportRecord] = []
    matcher = _Matcher(store, parsed, base, patient_key)
    seen: dict[StudyKey, int] = {}
    for row in parsed.rows:
        try:
            study, hashed = matcher.study(row)
            if study in seen:
                raise InvalidQuery(f"the same study as line {seen[study]}")
            records.append(reader.read(study, row.text, "csv", hashed))
            seen[study] = row.line
        except MedsearchError as error:
            bad.append({"line": row.line, "reason": str(error)})
    summary.rows = len(parsed.rows) + len(parsed.bad)
    summary.bad, summary.bad_rows = len(bad), sorted(bad, key=lambda b: int(b["line"]))[:MAX_LISTED]
    if not records:
        first = summary.bad_rows[0] if summary.bad_rows else None
        where = f" (line {first['line']}: {first['reason']})" if first else ""
        raise InvalidQuery(f"no row of {source} could be imported{where}; nothing was stored")
    summary.stored = store.reports.write(records)
    summary.replaced = sum(record.replaced for record in records)
    summary.labels = _label_counts(records)
    return summary


class _Matcher:
    """Finds the study of a row's key (the accession hash needs the store's patient key)."""

    def __init__(self, store: Store, parsed: ParsedCsv, base: Path | None, given: bytes | None) -> None:
        self.store, self.kind, self.base = store, parsed.key, base
        self.secret = patient_secret(store, given) if parsed.key == "accession" else None

    def study(self, row: CsvRow) -> tuple[StudyKey, str | None]:
        """(the study, the accession's hash or None). Raises InvalidQuery when the key matches none."""
        if self.kind == "study_uid":
            return StudyKey(study_uid=row.key), None
        if self.kind == "accession":
            hashed = accession_key(row.key, self.secret)
            studies = self.store.reports.studies_of_accession(hashed or "")
            if len(studies) != 1:
                found = "no indexed study" if not studies else f"{len(studies)} studies"
                raise InvalidQuery(f"the accession number matches {found}")
            return StudyKey(study_uid=studies[0]), hashed
        path = self._path(row.key)
        study = self.store.reports.study_of_path(path)
        if study is None:
            raise InvalidQuery("the path names no indexed image")
        return study, None

    def _path(self, given: str) -> str:
        path = Path(given).expanduser()
        if not path.is_absolute():
            if self.base is None:
                raise InvalidQuery("the path is relative; give the absolute path of the indexed file")
            path = self.base / path
        return str(path.resolve()) if self.base is not None else os.path.normpath(path)


def _label_counts(records: list[ReportRecord]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter[str]] = {}
    for record in records:
        for finding, polarity in record.labels.items():
            counts.setdefault(finding, Counter())[polarity] += 1
    return {finding: dict(sorted(counter.items())) for finding, counter in sorted(counts.items())}
