"""DICOM Structured Reports (Basic, Enhanced and Comprehensive Text SR) found among the images: their
text content tree read as a report of the study they reference, instead of a file that failed for having
no pixels. The reader raises ``ReportFound`` (an ``UnreadableFile``, so that a viewer or an upload still
says "not an image"); ``medsearch.indexer.load`` catches it and hands the report on
(``medsearch.storage.reports.ReportStore.take``).

The text is every TEXT item's value, depth first, in document order, one paragraph each (a full stop
added where a value has no final punctuation, so that two items never run into one sentence). CODE, NUM
and other items are left out: their meaning without the template is not a sentence. Budget:
``MAX_ITEMS`` items, ``MAX_DEPTH`` levels, ``MAX_CHARS`` characters; past it, the file fails with a reason."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from medsearch.errors import UnreadableFile
from medsearch.indexer.dicom_meta import accession_key, clean_text
from medsearch.storage.report_types import RawReport, StudyKey

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

SR_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.88.11": "Basic Text SR",
    "1.2.840.10008.5.1.4.1.1.88.22": "Enhanced SR",
    "1.2.840.10008.5.1.4.1.1.88.33": "Comprehensive SR",
}
MAX_ITEMS = 10_000
MAX_DEPTH = 32
MAX_CHARS = 100_000
_EVIDENCE = ("CurrentRequestedProcedureEvidenceSequence", "PertinentOtherEvidenceSequence")


class ReportFound(UnreadableFile):
    """Not an image but a structured report: ``report`` is what it says, about which study."""

    def __init__(self, report: RawReport) -> None:
        super().__init__("a structured report, not an image (read as its study's report)")
        self.report = report

    def __reduce__(self) -> tuple[Any, ...]:
        return (ReportFound, (self.report,))


def is_structured_report(ds: Dataset) -> bool:
    """Whether ``ds`` is a Basic, Enhanced or Comprehensive Text SR (by its SOP class)."""
    sop_class = ds.get("SOPClassUID")
    if not sop_class and getattr(ds, "file_meta", None):
        sop_class = ds.file_meta.get("MediaStorageSOPClassUID")
    return str(sop_class or "").strip("\x00 ") in SR_CLASSES


def read_report(ds: Dataset, secret: bytes | None) -> RawReport:
    """The report of an SR dataset: its text and the study it references (the evidence's study, else its
    own StudyInstanceUID). Raises UnreadableFile when it has no study, no text, or is over the budget."""
    study = _study_uid(ds)
    if study is None:
        raise UnreadableFile("a structured report without a StudyInstanceUID")
    paragraphs: list[str] = []
    _collect(ds.get("ContentSequence") or [], 1, paragraphs, [0])
    text = "\n".join(paragraphs)
    if not text.strip():
        raise UnreadableFile("a structured report without text")
    return RawReport(StudyKey(study_uid=study), text, "sr", accession_key(ds.get("AccessionNumber"), secret))


def _study_uid(ds: Dataset) -> str | None:
    for keyword in _EVIDENCE:
        for item in ds.get(keyword) or []:
            uid = clean_text(item.get("StudyInstanceUID"), 64)
            if uid:
                return uid
    return clean_text(ds.get("StudyInstanceUID"), 64)


def _collect(items: Any, depth: int, out: list[str], seen: list[int]) -> None:
    if depth > MAX_DEPTH:
        raise UnreadableFile(f"a structured report nested deeper than {MAX_DEPTH} levels")
    for item in items:
        seen[0] += 1
        if seen[0] > MAX_ITEMS:
            raise UnreadableFile(f"a structured report of more than {MAX_ITEMS} items")
        if str(item.get("ValueType") or "").strip() == "TEXT":
            value = clean_text(item.get("TextValue"), MAX_CHARS)
            if value:
                out.append(value if value[-1] in ".!?:;" else value + ".")
                if sum(len(p) for p in out) > MAX_CHARS:
                    raise UnreadableFile(f"a structured report of more than {MAX_CHARS} characters")
        _collect(item.get("ContentSequence") or [], depth + 1, out, seen)
