"""Reports: importing a CSV of reports, reading the structured reports the indexer finds, and what the
store holds (``medsearch.reports``; the tables are ``medsearch.storage.reports``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medsearch.context import Context
from medsearch.errors import InvalidQuery
from medsearch.reports.csv_import import MAX_BYTES
from medsearch.reports.importing import ImportSummary, import_reports_csv
from medsearch.reports.reading import DEFAULT_LABEL_SET
from medsearch.reports.search import reader_for
from medsearch.storage.report_types import RawReport
from medsearch.storage.reports import ReportRecord


class Reports:
    """Report import and the store's report summary over one ``Context``; it also reads the structured
    reports the indexer finds in that store (``store.reports.reader``), keeping their labels and
    de-identified sentences only."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        ctx.store.reports.reader = self.read_found

    def import_csv(self, source: str | Path | bytes, *, key: str | None = None, keep_text: bool = False,
                   label_set: str = DEFAULT_LABEL_SET, name: str = "the CSV",
                   patient_key: bytes | None = None) -> ImportSummary:
        """Import a CSV of reports: a file (relative paths in it are read from its folder) or its bytes (an
        upload: absolute paths only); ``patient_key`` hashes accession numbers (default: the store's key,
        ``medsearch.storage.patient_key``). Raises InvalidQuery (a bad file, no good row, an unknown key or label
        set), StoreError (a patient key that is not the store's)."""
        reader = reader_for(label_set, keep_text)
        if isinstance(source, bytes):
            return import_reports_csv(self.ctx.store, source, reader, key=key, source=name, patient_key=patient_key)
        path = Path(source).expanduser()
        return import_reports_csv(self.ctx.store, _read_capped(path), reader, key=key,
                                  base=path.resolve().parent, source=str(path), patient_key=patient_key)

    def read_found(self, raw: RawReport) -> ReportRecord:
        """The record of a structured report found while indexing. Raises InvalidQuery."""
        return reader_for(DEFAULT_LABEL_SET, False).read_raw(raw)

    def summary(self) -> dict[str, Any]:
        """How many studies have a report, and the findings their labels name."""
        return {"reports": self.ctx.store.reports.count(), "findings": self.ctx.store.reports.findings()}


def _read_capped(path: Path) -> bytes:
    """The bytes of the file at ``path``, refused past ``MAX_BYTES``. Raises InvalidQuery."""
    try:
        if not path.is_file():
            raise InvalidQuery(f"{path} is not a file")
        if path.stat().st_size > MAX_BYTES:
            raise InvalidQuery(f"{path} is larger than {MAX_BYTES // (1024 * 1024)} MiB; split it")
        with path.open("rb") as handle:
            return handle.read(MAX_BYTES + 1)
    except OSError as error:
        raise InvalidQuery(f"cannot read {path}: {error.strerror}") from None
